package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

func userRef(c *gin.Context) engine.UserRef {
	return engine.UserRef{Tenant: principal(c).Tenant, User: c.Param("user")}
}

type putUserReq struct {
	Email       *string `json:"email"`
	DisplayName *string `json:"display_name"`
	Locale      *string `json:"locale"`
	TimeZone    *string `json:"time_zone"`
	Group       *string `json:"group"`
	actorReq
}

func (s *Server) putUser(c *gin.Context) {
	var req putUserReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.eng.Lifecycle.PutUser(c.Request.Context(), userRef(c), engine.ProfileInput{Email: req.Email, DisplayName: req.DisplayName,
		Locale: req.Locale, TimeZone: req.TimeZone, Group: req.Group, Actor: req.actor()})
	if err != nil {
		s.writeError(c, err)
		return
	}
	if res.EmailChange != nil {
		// The other fields are applied; the new address waits for the
		// challenge of a current factor, then a code sent to it.
		c.JSON(http.StatusAccepted, emailChangeStarted{UserView: res.User, Challenge: *res.EmailChange})
		return
	}
	c.JSON(http.StatusOK, res.User)
}

// emailChangeStarted is the 202 answer of PUT /v1/users/{id}: the user as
// stored (still with the old address) and the challenge of step one.
type emailChangeStarted struct {
	engine.UserView
	Challenge engine.ChallengeView `json:"challenge"`
}

func (s *Server) getUser(c *gin.Context) {
	v, err := s.eng.Lifecycle.GetUser(c.Request.Context(), userRef(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// actorReq is the optional context a host app passes with a lifecycle call
// so the user's e-mail can say where the change came from.
type actorReq struct {
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// check refuses a malformed client IP or an oversize user agent, as
// evaluate does (decode calls it).
func (a actorReq) check() error { return engine.ValidClient(a.IP, a.UserAgent) }

func (a actorReq) actor() engine.Actor {
	return engine.Actor{Kind: message.ActorUser, IP: a.IP, UserAgent: a.UserAgent}
}

func (s *Server) eraseUser(c *gin.Context) {
	if err := s.eng.Lifecycle.EraseUser(c.Request.Context(), userRef(c), engine.Actor{Kind: message.ActorUser}); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// started answers a lifecycle call that created a challenge.
func (s *Server) started(c *gin.Context, st engine.Started, err error) {
	if err != nil {
		s.writeError(c, err)
		return
	}
	body := gin.H{"challenge": st.Challenge}
	for k, v := range st.Extra {
		body[k] = v
	}
	c.JSON(http.StatusCreated, body)
}

type smsReq struct {
	Phone string `json:"phone"`
	actorReq
}

func (s *Server) startSMS(c *gin.Context) {
	var req smsReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	st, err := s.eng.Lifecycle.StartSMS(c.Request.Context(), userRef(c), req.Phone, req.actor())
	s.started(c, st, err)
}

type phoneChangeReq struct {
	NewPhone string `json:"new_phone"`
	actorReq
}

func (s *Server) startPhoneChange(c *gin.Context) {
	var req phoneChangeReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	st, err := s.eng.Lifecycle.StartPhoneChange(c.Request.Context(), userRef(c), req.NewPhone, req.actor())
	s.started(c, st, err)
}

// lifecycle serves a start call whose body is only the optional actor.
func (s *Server) lifecycle(start func(context.Context, engine.UserRef, engine.Actor) (engine.Started, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req actorReq
		if err := decode(c, &req, true); err != nil {
			s.writeError(c, err)
			return
		}
		st, err := start(c.Request.Context(), userRef(c), req.actor())
		s.started(c, st, err)
	}
}

func (s *Server) listDevices(c *gin.Context) {
	ds, err := s.eng.Lifecycle.Devices(c.Request.Context(), userRef(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"devices": ds})
}

func (s *Server) forget(c *gin.Context, device string, reason message.Reason, actor engine.Actor) {
	n, err := s.eng.Lifecycle.ForgetDevices(c.Request.Context(), userRef(c), device, reason, actor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"forgotten": n})
}

func (s *Server) forgetDevices(c *gin.Context) {
	s.forget(c, "", message.ReasonUser, engine.Actor{Kind: message.ActorUser})
}
func (s *Server) forgetDevice(c *gin.Context) {
	s.forget(c, c.Param("device"), message.ReasonUser, engine.Actor{Kind: message.ActorUser})
}

func (s *Server) sessionEvent(reason message.Reason) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req actorReq
		if err := decode(c, &req, true); err != nil {
			s.writeError(c, err)
			return
		}
		s.forget(c, "", reason, req.actor())
	}
}

type historyReq struct {
	Logins []engine.PastLogin `json:"logins"`
}

func (s *Server) importHistory(c *gin.Context) {
	var req historyReq
	if err := decodeLimit(c, &req, false, maxImportBody); err != nil {
		s.writeError(c, err)
		return
	}
	n, err := s.eng.Logins.ImportHistory(c.Request.Context(), userRef(c), req.Logins, engine.Actor{Kind: message.ActorUser})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"imported": n})
}
