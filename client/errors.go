package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is a non-2xx answer of the API, parsed from its
// {"error":{"code":…,"message":…,…}} body.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's stable snake_case error code, such as
	// "unauthenticated" or "validation_failed"; empty when the answer did
	// not come from stepup (a proxy's error page, say).
	Code string
	// Message is the API's explanation for humans.
	Message string
	// Fields holds the error's other members: "field" (the request field
	// at fault), "attempts_left", "retry_after", "hint", "request_id" …
	Fields map[string]any
	// RetryAfter is how long to wait before trying again, from the
	// Retry-After header (or the body's retry_after); zero if not given.
	RetryAfter time.Duration
}

// Error reads like "forbidden: this key may not do that (HTTP 403)".
func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// Field returns the request field the error is about ("" if none).
func (e *APIError) Field() string {
	s, _ := e.Fields["field"].(string)
	return s
}

// ErrorCode returns the API error code of err, or "" if err is not (or
// does not wrap) an *APIError.
func ErrorCode(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// parseError builds the APIError of a non-2xx answer.
func parseError(res *http.Response, raw []byte) *APIError {
	e := &APIError{Status: res.StatusCode}
	var body struct {
		Error map[string]any `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil {
		e.Code, _ = body.Error["code"].(string)
		e.Message, _ = body.Error["message"].(string)
		delete(body.Error, "code")
		delete(body.Error, "message")
		if len(body.Error) > 0 {
			e.Fields = body.Error
		}
	}
	if loc := res.Header.Get("Location"); e.Message == "" && res.StatusCode >= 300 && res.StatusCode < 400 && loc != "" {
		// A redirect, which the client does not follow (see New).
		e.Message = http.StatusText(res.StatusCode) + ": the server redirects to " + loc + "; use that as the base URL"
	}
	if e.Message == "" {
		// Not stepup's answer: say what came back, briefly.
		e.Message = http.StatusText(res.StatusCode)
		if s := strings.TrimSpace(string(raw)); s != "" && !strings.HasPrefix(s, "<") {
			if len(s) > 200 {
				s = s[:200] + "…"
			}
			e.Message += ": " + s
		}
		if e.Message == "" {
			e.Message = "unexpected answer"
		}
	}
	if s := res.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	if e.RetryAfter == 0 {
		if n, ok := e.Fields["retry_after"].(float64); ok && n > 0 {
			e.RetryAfter = time.Duration(n * float64(time.Second))
		}
	}
	return e
}
