package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// feedbackPlan is feedbackScript's argument: a commit plan with the
// verdict on the login record at index Rec.
type feedbackPlan struct {
	writePlan
	Rec     int          `json:"rec"`
	Verdict string       `json:"verdict"`
	Unlearn *planUnlearn `json:"unlearn,omitempty"`
}

// planUnlearn is a learnt login taken back out of the user's history.
type planUnlearn struct {
	Rec  int        `json:"rec"`
	Meta int        `json:"meta"`
	Hist []planHist `json:"hist"`
	Last string     `json:"last"` // the place the login left as the user's last, "" for none
	// LastJSON is that place as the store wrote it before lastPlace, so
	// a login learnt then is unlearnt too.
	LastJSON string `json:"last_json"`
}

// Feedback records a verdict on a login: feedbackScript in the user's
// slot, then, when it applied, the tenant's side: reportScript for fraud,
// and the login's counts taken out of (fraud) or added to (a learnt legit
// login) the tenant's statistics.
func (s *Store) Feedback(ctx context.Context, u engine.UserRef, w engine.FeedbackWrite) (engine.FeedbackSaved, error) {
	us := space(u)
	keys := []string{us.Account(), us.Queue(), us.Events(), us.Users(), us.OpenChallenges()}
	add := func(key string) int { keys = append(keys, key); return len(keys) }
	cp, err := s.commitPlan(u, add, w.Commit)
	if err != nil {
		return engine.FeedbackSaved{}, err
	}
	p := feedbackPlan{writePlan: cp, Rec: add(us.Login(w.Record.ID)), Verdict: string(w.Verdict)}
	switch w.Verdict {
	case engine.VerdictLegit:
		p.Learn = learnPlan(us, add, w.Record, w.LearnOpt)
		p.Learn.Once = p.Rec
	case engine.VerdictFraud:
		p.Unlearn = &planUnlearn{Rec: p.Rec, Meta: add(us.Meta()), Hist: histPlan(w.Record), Last: lastPlace(w.Record), LastJSON: lastPlaceJSON(w.Record)}
	default:
		return engine.FeedbackSaved{}, fmt.Errorf("redisstore: feedback: unknown verdict %q", w.Verdict)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return engine.FeedbackSaved{}, err
	}
	res, err := feedbackScript.Run(ctx, s.rdb, keys, b).Slice()
	if err != nil {
		return engine.FeedbackSaved{}, err
	}
	if len(res) != 3 {
		return engine.FeedbackSaved{}, fmt.Errorf("redisstore: feedback: unexpected answer %v", res)
	}
	status := str(res[0])
	switch {
	case status == "OK":
	case status == "missing":
		return engine.FeedbackSaved{}, engine.E(engine.KindNotFound, "login_not_found", "no login with this id was evaluated in the feedback window")
	case strings.HasPrefix(status, "verdict:"):
		return engine.FeedbackSaved{Previous: engine.Verdict(strings.TrimPrefix(status, "verdict:"))}, nil
	case status == "conflict":
		return engine.FeedbackSaved{}, engine.ErrConflict
	default:
		return engine.FeedbackSaved{}, errors.New("redisstore: feedback: unexpected answer " + status)
	}
	saved := engine.FeedbackSaved{Changed: toInt(res[1]) == 1}
	switch {
	case w.Verdict == engine.VerdictFraud:
		if err := s.report(ctx, u, w); err != nil {
			return saved, err
		}
		if saved.Changed {
			_, err = s.countLogin(ctx, u, w.Record, tenantSide{unlearn: true, lastOne: toInt(res[2]) == 0})
		}
	case saved.Changed:
		_, err = s.countLogin(ctx, u, w.Record, tenantSide{learn: true})
	}
	return saved, err
}

// report raises the fraud reports of a login's networks.
func (s *Store) report(ctx context.Context, u engine.UserRef, w engine.FeedbackWrite) error {
	if len(w.Networks) == 0 {
		return nil
	}
	now := w.Commit.Now
	if now.IsZero() {
		now = time.Now()
	}
	half := max(int64(w.HalfLife/time.Second), 1)
	args := []any{now.Unix(), half}
	for _, v := range w.Networks {
		args = append(args, reportField(v))
	}
	return reportScript.Run(ctx, s.rdb, []string{keyspace.TenantOf(u.Tenant).Reports()}, args...).Err()
}

// reportField names a network level's value in the tenant's reports.
func reportField(v engine.LevelValue) string { return v.Level + ":" + v.Hash }

// parseReport reads a report's "<weight>:<unix s>".
func parseReport(s string) (engine.NetworkReport, bool) {
	w, t, ok := strings.Cut(s, ":")
	if !ok {
		return engine.NetworkReport{}, false
	}
	wf, err1 := strconv.ParseFloat(w, 64)
	ts, err2 := strconv.ParseInt(t, 10, 64)
	if err1 != nil || err2 != nil {
		return engine.NetworkReport{}, false
	}
	return engine.NetworkReport{Weight: wf, At: time.Unix(ts, 0)}, true
}
