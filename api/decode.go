package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
)

// maxBody is the largest request body accepted.
const maxBody = 64 << 10

// readBody reads the body within maxBody.
func readBody(c *gin.Context) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, engine.E(engine.KindInvalid, "bad_json", "could not read the request body")
	}
	return b, nil
}

// decode reads a JSON object into v, refusing unknown fields, trailing
// data and oversize bodies. An empty body decodes as {} when allowEmpty.
func decode(c *gin.Context, v any, allowEmpty bool) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeBytes(b, v, allowEmpty)
}

// decodeBytes is decode's pure half, fuzzed by FuzzDecode.
func decodeBytes(b []byte, v any, allowEmpty bool) error {
	if t := bytes.TrimSpace(b); len(t) == 0 || string(t) == "null" {
		// An optional body may be absent, or JSON null as some clients
		// send for "nothing".
		if allowEmpty {
			return nil
		}
		return engine.E(engine.KindInvalid, "bad_json", "request body is empty; send a JSON object")
	}
	return engine.DecodeObject(b, v)
}
