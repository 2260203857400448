package api

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/delivery/twilio"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

func (s *Server) getPolicy(c *gin.Context) {
	v, err := s.eng.Policies.GetPolicy(c.Request.Context(), principal(c).Tenant)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) putPolicy(c *gin.Context) {
	b, err := readBody(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	u, err := decodePolicy(b)
	if err != nil {
		s.writeError(c, err)
		return
	}
	v, err := s.eng.Policies.PutPolicy(c.Request.Context(), principal(c).Tenant, u, s.managerActor(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) adminGetUser(c *gin.Context) {
	v, err := s.eng.Lifecycle.GetUser(c.Request.Context(), userRef(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

type resetReq struct {
	Reason string `json:"reason"`
}

func (s *Server) adminReset(c *gin.Context) {
	var req resetReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	v, err := s.eng.Policies.AdminReset(c.Request.Context(), userRef(c), req.Reason, s.managerActor(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

type disableAllReq struct {
	Reason string `json:"reason"`
	Group  string `json:"group"`
}

func (s *Server) disableAll(c *gin.Context) {
	var req disableAllReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.eng.Policies.DisableAll(c.Request.Context(), principal(c).Tenant, req.Reason, req.Group, s.managerActor(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) events(c *gin.Context) {
	q := engine.EventQuery{User: c.Query("user_id"), Type: message.EventType(c.Query("type")), Cursor: c.Query("cursor")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(c, engine.Invalid("limit", "an integer between 1 and 1000"))
			return
		}
		q.Limit = n
	}
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			s.writeError(c, engine.Invalid("since", "an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"))
			return
		}
		q.Since = t
	}
	evs, next, err := s.eng.Policies.Events(c.Request.Context(), principal(c).Tenant, q)
	if err != nil {
		s.writeError(c, err)
		return
	}
	body := gin.H{"events": evs}
	if next != "" {
		body["next_cursor"] = next
	}
	c.JSON(http.StatusOK, body)
}

// twilioStatus records Twilio's delivery reports for challenge messages.
func (s *Server) twilioStatus(c *gin.Context) {
	if s.opt.TwilioAuthToken == "" || s.opt.ValidateTwilio == nil {
		s.writeError(c, errNotFound)
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.writeError(c, engine.E(engine.KindInvalid, "bad_form", "the body is not a form"))
		return
	}
	params := map[string]string{}
	for k, v := range form {
		if len(v) > 0 {
			params[k] = v[0]
		}
	}
	signed := s.opt.PublicURL + c.Request.URL.RequestURI()
	if s.opt.TwilioStatusURL != "" {
		signed = s.opt.TwilioStatusURL
	}
	if !s.opt.ValidateTwilio(s.opt.TwilioAuthToken, signed, params, c.GetHeader("X-Twilio-Signature")) {
		s.writeError(c, engine.E(engine.KindForbidden, "bad_signature", "X-Twilio-Signature does not match"))
		return
	}
	st, _ := twilio.DeliveryState(params["MessageStatus"]) // "" for statuses not tracked
	if err := s.eng.Challenges.DeliveryReport(c.Request.Context(), params["MessageSid"], st, params["ErrorCode"]); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Report suspicious activity</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto">
{{if .Done}}<h1>Thank you</h1><p>We signed your account out of every remembered device, will ask for a code at your next sign-in, and told your organisation's administrators. Change your password now.</p>
{{else if .Err}}<h1>This link does not work</h1><p>{{.Err}}</p>
{{else}}<h1>Wasn't you?</h1><p>If you did not make this change, confirm below: your remembered devices will be forgotten, your next sign-in will ask for a code, and your administrators will be told.</p>
<form method="post"><button type="submit">This wasn't me</button></form>{{end}}
</body></html>`))

// reportPage shows the confirmation page of a "this wasn't me" link: a GET
// never acts (mail scanners follow links).
func (s *Server) reportPage(c *gin.Context) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	_ = reportTmpl.Execute(c.Writer, map[string]any{})
}

func (s *Server) report(c *gin.Context) {
	err := s.eng.Policies.Report(c.Request.Context(), c.Param("token"))
	if c.GetHeader("Accept") == "application/json" || c.ContentType() == "application/json" {
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"reported": true})
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		c.Status(engineStatus(err))
		_ = reportTmpl.Execute(c.Writer, map[string]any{"Err": engine.AsError(err).Msg})
		return
	}
	_ = reportTmpl.Execute(c.Writer, map[string]any{"Done": true})
}

// managerActor is the audit actor of a manager key's request: the key's
// label names who made the change.
func (s *Server) managerActor(c *gin.Context) engine.Actor {
	return engine.Actor{Kind: message.ActorManager, IP: s.clientIP(c), Label: principal(c).Label}
}

func engineStatus(err error) int { return statusOf[engine.AsError(err).Kind] }
