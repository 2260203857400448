package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

type evaluateReq struct {
	UserID      string `json:"user_id"`
	IP          string `json:"ip"`
	UserAgent   string `json:"user_agent"`
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
}

func (s *Server) evaluate(c *gin.Context) {
	var req evaluateReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	ev, err := s.eng.Logins.Evaluate(c.Request.Context(), principal(c).Tenant, engine.EvaluateInput(req))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ev)
}

type failedReq struct {
	UserID    string `json:"user_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

func (s *Server) failedLogin(c *gin.Context) {
	var req failedReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.eng.Logins.RecordFailedLogin(c.Request.Context(), principal(c).Tenant, engine.FailedInput(req)); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type feedbackReq struct {
	Verdict string `json:"verdict"`
}

func (s *Server) loginFeedback(c *gin.Context) {
	var req feedbackReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.eng.Logins.Feedback(c.Request.Context(), principal(c).Tenant, c.Param("login_id"), engine.Verdict(req.Verdict),
		engine.Actor{Kind: message.ActorSystem, IP: s.clientIP(c)})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) getChallenge(c *gin.Context) {
	v, err := s.eng.Challenges.GetChallenge(c.Request.Context(), principal(c).Tenant, c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

type verifyReq struct {
	Code           string `json:"code"`
	RememberDevice bool   `json:"remember_device"`
	actorReq
}

func (s *Server) verify(c *gin.Context) {
	var req verifyReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.eng.Challenges.Verify(c.Request.Context(), principal(c).Tenant, c.Param("id"), engine.VerifyInput{
		Code: req.Code, RememberDevice: req.RememberDevice, Actor: req.actor()})
	if err != nil {
		s.writeError(c, err)
		return
	}
	if res.Result == nil {
		res.Result = map[string]any{}
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) resend(c *gin.Context) {
	if err := decode(c, &struct{}{}, true); err != nil {
		s.writeError(c, err)
		return
	}
	v, err := s.eng.Challenges.Resend(c.Request.Context(), principal(c).Tenant, c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, v)
}

type switchReq struct {
	Channel engine.Channel `json:"channel"`
}

func (s *Server) switchChallenge(c *gin.Context) {
	var req switchReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	switch req.Channel {
	case engine.ChannelSMS, engine.ChannelTOTP, engine.ChannelEmail:
	default:
		s.writeError(c, engine.Invalid("channel", "must be sms, totp or email"))
		return
	}
	v, err := s.eng.Challenges.Switch(c.Request.Context(), principal(c).Tenant, c.Param("id"), req.Channel, engine.Actor{Kind: message.ActorUser})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}
