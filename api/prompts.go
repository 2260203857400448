package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

type promptReq struct {
	LoginID   string `json:"login_id"`
	UserID    string `json:"user_id"`
	Action    string `json:"action"`
	ReturnURL string `json:"return_url"`
	State     string `json:"state"`
}

func (s *Server) createPrompt(c *gin.Context) {
	var req promptReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	out, err := s.eng.Prompts.Create(c.Request.Context(), principal(c), engine.PromptInput(req), engine.Actor{Kind: message.ActorUser})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

type exchangeReq struct {
	Code string `json:"code"`
}

func (s *Server) exchangePrompt(c *gin.Context) {
	var req exchangeReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	out, err := s.eng.Prompts.Exchange(c.Request.Context(), principal(c).Tenant, req.Code)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) removePasskey(c *gin.Context) {
	err := s.eng.Lifecycle.RemovePasskey(c.Request.Context(), userRef(c), c.Param("passkey"), engine.Actor{Kind: message.ActorUser})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
