package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
)

// statusOf is the one mapping from domain error kinds to HTTP statuses.
var statusOf = map[engine.Kind]int{
	engine.KindInternal:        http.StatusInternalServerError,
	engine.KindInvalid:         http.StatusBadRequest,
	engine.KindUnauthenticated: http.StatusUnauthorized,
	engine.KindForbidden:       http.StatusForbidden,
	engine.KindNotFound:        http.StatusNotFound,
	engine.KindConflict:        http.StatusConflict,
	engine.KindGone:            http.StatusGone,
	engine.KindUnprocessable:   http.StatusUnprocessableEntity,
	engine.KindLocked:          http.StatusLocked,
	engine.KindRateLimited:     http.StatusTooManyRequests,
	engine.KindUnavailable:     http.StatusServiceUnavailable,
	kindTooLarge:               http.StatusRequestEntityTooLarge,
	kindMethodNotAllowed:       http.StatusMethodNotAllowed,
}

// Kinds of the HTTP shell's own refusals; the engine never returns them.
const (
	kindTooLarge engine.Kind = 100 + iota
	kindMethodNotAllowed
)

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error map[string]any `json:"error"`
}

// writeError answers err as JSON. Internal errors are logged with the
// request id and never shown; a store that cannot be reached answers 503
// store_unavailable with Retry-After (engine.AsError decides which errors
// mean that), logged as a warning.
func (s *Server) writeError(c *gin.Context, err error) {
	e := engine.AsError(err) // store failures become store_unavailable here
	status := statusOf[e.Kind]
	body := map[string]any{"code": e.Code, "message": e.Msg}
	if e.Kind == engine.KindInternal {
		s.log.ErrorContext(c.Request.Context(), "internal error", "request_id", requestID(c), "err", err)
		body["message"] = "internal error; quote request id " + requestID(c)
		body["request_id"] = requestID(c)
	} else {
		if e.Code == engine.ErrStoreUnavailable.Code {
			s.log.WarnContext(c.Request.Context(), "store unavailable", "request_id", requestID(c), "err", e.Err)
		}
		for k, v := range e.Meta {
			body[k] = v
		}
	}
	if ra, ok := e.Meta["retry_after"]; ok {
		c.Header("Retry-After", strconv.Itoa(toInt(ra)))
	}
	c.AbortWithStatusJSON(status, errorBody{Error: body})
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return 1
}

var (
	errNotFound         = engine.E(engine.KindNotFound, "not_found", "no such endpoint")
	errMethodNotAllowed = engine.E(kindMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint")
)

// bodyTooLarge is the error of a body above limit bytes.
func bodyTooLarge(limit int64) *engine.Error {
	return engine.E(kindTooLarge, "body_too_large", fmt.Sprintf("request body is larger than %d KiB", limit>>10))
}

func logAttrs(c *gin.Context) []any {
	return []any{slog.String("request_id", requestID(c))}
}
