package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

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
}

// Feedback records a verdict on a login: feedbackScript in the user's
// slot, then, when it applied, the tenant's side as a statistics write
// (reportScript for fraud, tenantWriteScript for a learnt legit login).
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
		p.Unlearn = &planUnlearn{Rec: p.Rec, Meta: add(us.Meta()), Hist: histPlan(us, add, w.Record), Last: lastPlace(w.Record)}
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
	err = s.pipelined(ctx, func(pipe redis.Pipeliner) {
		switch {
		case w.Verdict == engine.VerdictFraud:
			s.reportWrite(ctx, pipe, u, w, saved.Changed, toInt(res[2]) == 0)
		case saved.Changed:
			s.tenantWrite(ctx, pipe, u, w.Record, tenantSide{learn: true})
		}
	})
	return saved, err
}

// reportWrite queues the tenant's side of a fraud verdict: its networks'
// reports and, when the login was unlearnt, its counts.
func (s *Store) reportWrite(ctx context.Context, pipe redis.Pipeliner, u engine.UserRef, w engine.FeedbackWrite, unlearnt, lastLogin bool) {
	ts := keyspace.TenantOf(u.Tenant)
	now := w.Commit.Now
	if now.IsZero() {
		now = time.Now()
	}
	half := max(int64(w.HalfLife/time.Second), 1)
	keys := []string{ts.Reports(), ts.Stats()}
	args := []any{now.Unix(), half, flag(unlearnt && lastLogin), len(w.Networks)}
	for _, v := range w.Networks {
		args = append(args, reportField(v))
	}
	if unlearnt {
		for _, v := range w.Record.Levels {
			keys = append(keys, ts.Counts(v.Level))
			args = append(args, v.Bucket)
		}
	}
	reportScript.Run(ctx, pipe, keys, args...)
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
