package api

import (
	"context"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

// Engine is what the API serves: one interface per flow of the engine,
// declared here where it is used, each as small as the handlers need.
// internal/app fills it from an *engine.Engine (see FromEngine); tests may
// fill it with fakes.
type Engine struct {
	Tenants    tenantService
	Policies   policyService
	Logins     loginService
	Challenges challengeService
	Lifecycle  lifecycleService
	Prompts    promptService
}

// FromEngine returns the API's view of an engine.
func FromEngine(e *engine.Engine) Engine {
	return Engine{Tenants: e.Tenants, Policies: e.Policies, Logins: e.Logins, Challenges: e.Challenges, Lifecycle: e.Lifecycle, Prompts: e.Prompts}
}

type tenantService interface {
	AuthenticateFrom(ctx context.Context, secret, client string) (engine.Principal, error)
	Ping(ctx context.Context) error
	CreateTenant(ctx context.Context, name, senderName string) (engine.Tenant, error)
	Tenants(ctx context.Context) ([]engine.Tenant, error)
	CreateKey(ctx context.Context, tenant string, kind engine.KeyKind, label string) (engine.NewKey, error)
	Keys(ctx context.Context, tenant string) ([]engine.Key, error)
	DeleteKey(ctx context.Context, tenant, id string) error
}

type policyService interface {
	GetPolicy(ctx context.Context, tenant string) (engine.PolicyView, error)
	PutPolicy(ctx context.Context, tenant string, u engine.PolicyUpdate, actor engine.Actor) (engine.PolicyView, error)
	AdminReset(ctx context.Context, u engine.UserRef, reason string, actor engine.Actor) (engine.UserView, error)
	DisableAll(ctx context.Context, tenant, reason, group string, actor engine.Actor) (engine.DisableAllResult, error)
	Events(ctx context.Context, tenant string, q engine.EventQuery) ([]engine.Event, string, error)
	Report(ctx context.Context, token string) error
}

type loginService interface {
	Evaluate(ctx context.Context, tenant string, in engine.EvaluateInput) (engine.Evaluation, error)
	RecordFailedLogin(ctx context.Context, tenant string, in engine.FailedInput) error
	Feedback(ctx context.Context, tenant, loginID string, v engine.Verdict, actor engine.Actor) (engine.FeedbackResult, error)
	ImportHistory(ctx context.Context, u engine.UserRef, logins []engine.PastLogin, actor engine.Actor) (int, error)
}

type challengeService interface {
	GetChallenge(ctx context.Context, tenant, id string) (engine.ChallengeView, error)
	Verify(ctx context.Context, tenant, id string, in engine.VerifyInput) (engine.VerifyResult, error)
	Resend(ctx context.Context, tenant, id string) (engine.ChallengeView, error)
	Switch(ctx context.Context, tenant, id string, channel engine.Channel, actor engine.Actor) (engine.ChallengeView, error)
	DeliveryReport(ctx context.Context, providerID string, st message.DeliveryState, errorCode string) error
}

type lifecycleService interface {
	StartSMS(ctx context.Context, u engine.UserRef, phone string, actor engine.Actor) (engine.Started, error)
	StartTOTP(ctx context.Context, u engine.UserRef, actor engine.Actor) (engine.Started, error)
	StartEmailFactor(ctx context.Context, u engine.UserRef, actor engine.Actor) (engine.Started, error)
	StartPhoneChange(ctx context.Context, u engine.UserRef, phone string, actor engine.Actor) (engine.Started, error)
	StartDisable(ctx context.Context, u engine.UserRef, actor engine.Actor) (engine.Started, error)
	StartBackupCodes(ctx context.Context, u engine.UserRef, actor engine.Actor) (engine.Started, error)
	PutUser(ctx context.Context, u engine.UserRef, in engine.ProfileInput) (engine.PutUserResult, error)
	GetUser(ctx context.Context, u engine.UserRef) (engine.UserView, error)
	Devices(ctx context.Context, u engine.UserRef) ([]engine.DeviceView, error)
	ForgetDevices(ctx context.Context, u engine.UserRef, deviceID string, reason message.Reason, actor engine.Actor) (int, error)
	EraseUser(ctx context.Context, u engine.UserRef, actor engine.Actor) error
	RemovePasskey(ctx context.Context, u engine.UserRef, id string, actor engine.Actor) error
}

type promptService interface {
	Create(ctx context.Context, by engine.Principal, in engine.PromptInput, actor engine.Actor) (engine.PromptCreated, error)
	Exchange(ctx context.Context, tenant, code string) (engine.ExchangeResult, error)
}
