package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
)

type createTenantReq struct {
	Name       string `json:"name"`
	SenderName string `json:"sender_name"`
}

func (s *Server) createTenant(c *gin.Context) {
	var req createTenantReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	t, err := s.eng.Tenants.CreateTenant(c.Request.Context(), req.Name, req.SenderName)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, t)
}

func (s *Server) listTenants(c *gin.Context) {
	ts, err := s.eng.Tenants.Tenants(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tenants": ts})
}

type createKeyReq struct {
	Kind  engine.KeyKind `json:"kind"`
	Label string         `json:"label"`
}

func (s *Server) createKey(c *gin.Context) {
	var req createKeyReq
	if err := decode(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	k, err := s.eng.Tenants.CreateKey(c.Request.Context(), c.Param("tenant"), req.Kind, req.Label)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, k)
}

func (s *Server) listKeys(c *gin.Context) {
	ks, err := s.eng.Tenants.Keys(c.Request.Context(), c.Param("tenant"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"keys": ks})
}

func (s *Server) deleteKey(c *gin.Context) {
	if err := s.eng.Tenants.DeleteKey(c.Request.Context(), c.Param("tenant"), c.Param("key")); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
