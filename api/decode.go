package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/engine"
)

// This file is the one place where request bodies are decoded: strictly,
// with decoding errors turned into the API's errors naming the JSON field.

// maxBody is the largest request body accepted.
const maxBody = 64 << 10

// maxImportBody is the largest history import accepted: engine.MaxImport
// past logins, each with a browser's user agent and a device id, are far
// above maxBody.
const maxImportBody = 2 << 20

// readBody reads the body within maxBody.
func readBody(c *gin.Context) ([]byte, error) {
	return readBodyLimit(c, maxBody)
}

// readBodyLimit reads the body within limit bytes.
func readBodyLimit(c *gin.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, bodyTooLarge(limit)
	}
	if err != nil {
		return nil, engine.E(engine.KindInvalid, "bad_json", "could not read the request body")
	}
	return b, nil
}

// decode reads a JSON object into v, refusing unknown fields, trailing
// data and oversize bodies. An empty body decodes as {} when allowEmpty.
func decode(c *gin.Context, v any, allowEmpty bool) error {
	return decodeLimit(c, v, allowEmpty, maxBody)
}

// decodeLimit is decode with a body limit of its own.
func decodeLimit(c *gin.Context, v any, allowEmpty bool, limit int64) error {
	b, err := readBodyLimit(c, limit)
	if err != nil {
		return err
	}
	if err := decodeBytes(b, v, allowEmpty); err != nil {
		return err
	}
	if ch, ok := v.(checked); ok {
		return ch.check()
	}
	return nil
}

// checked is a request whose decoded fields have checks of their own
// (actorReq's client, in every request that embeds it).
type checked interface{ check() error }

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
	return decodeObject(b, v)
}

// decodeObject decodes one JSON object into v, refusing anything else
// (arrays, strings, null), unknown fields and trailing data.
func decodeObject(b []byte, v any) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return engine.E(engine.KindInvalid, "bad_json", "the body must be a JSON object")
	}
	if !utf8.Valid(b) {
		// JSON is UTF-8 (RFC 8259); encoding/json would swap each bad byte
		// for U+FFFD, making two different user ids one.
		return engine.E(engine.KindInvalid, "bad_json", "request body is not valid UTF-8")
	}
	if loneSurrogate(b) {
		// The same for an escaped half of a UTF-16 pair without its other
		// half ("\ud800"), as JavaScript's JSON.stringify writes one.
		return engine.E(engine.KindInvalid, "bad_json", "request body escapes a lone UTF-16 surrogate")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return engine.E(engine.KindInvalid, "bad_json", "trailing data after the JSON object")
	}
	return nil
}

// loneSurrogate reports a \u escape of a UTF-16 surrogate that is not a
// high one followed by a low one. Outside strings valid JSON has no
// backslash, and each escape is skipped whole, so "\\ud800" (an escaped
// backslash, then text) is not one.
func loneSurrogate(b []byte) bool {
	hex4 := func(i int) rune {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return -1
		}
		var r rune
		for _, c := range b[i+2 : i+6] {
			switch {
			case '0' <= c && c <= '9':
				r = r<<4 | rune(c-'0')
			case 'a' <= c && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case 'A' <= c && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return -1
			}
		}
		return r
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r := hex4(i)
		switch {
		case 0xD800 <= r && r < 0xDC00:
			if lo := hex4(i + 6); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		default:
			i++ // the escaped character, whatever it is
		}
	}
	return false
}

// jsonError turns a decoding error into the API's error.
func jsonError(err error) *engine.Error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		field := strings.Trim(rest, `"`)
		return engine.E(engine.KindInvalid, "unknown_field", "unknown field "+rest).With("field", field)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return engine.Invalid(jsonField(te.Field), "must be "+jsonKind(te.Type))
	}
	return engine.E(engine.KindInvalid, "bad_json", "request body is not valid JSON: "+strings.TrimPrefix(msg, "json: "))
}

// jsonField drops the Go names of embedded structs from a decoding error's
// field path ("PolicyPatch.grace_logins" → "grace_logins"): clients know
// only the JSON names, which here are all lower case.
func jsonField(path string) string {
	parts := strings.Split(path, ".")
	for len(parts) > 1 && parts[0] != "" && unicode.IsUpper(rune(parts[0][0])) {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// policyBody is the body of PUT /v1/admin/policy: the policy's fields, the
// groups (each decoded on its own, so that an error names its group), and
// the effective_groups of a GET answer sent back as is, which are ignored.
type policyBody struct {
	engine.PolicyPatch
	Groups          map[string]json.RawMessage `json:"groups"`
	EffectiveGroups json.RawMessage            `json:"effective_groups"`
}

// decodePolicy decodes a PUT /v1/admin/policy body into the update it asks
// for: the fields it names (a list named as null clears the list), and,
// when it names groups, the whole new set of groups.
func decodePolicy(b []byte) (engine.PolicyUpdate, error) {
	var probe map[string]json.RawMessage
	if err := decodeBytes(b, &probe, false); err != nil {
		return engine.PolicyUpdate{}, err
	}
	if _, ok := probe["required_since"]; ok {
		// Stored with the policy, but the engine's to set.
		return engine.PolicyUpdate{}, engine.E(engine.KindInvalid, "unknown_field", `unknown field "required_since"`).With("field", "required_since")
	}
	var body policyBody
	if err := decodeObject(b, &body); err != nil {
		return engine.PolicyUpdate{}, err
	}
	u := engine.PolicyUpdate{Policy: body.PolicyPatch}
	namedNulls(&u.Policy, probe)
	if _, ok := probe["groups"]; !ok {
		return u, nil
	}
	groups := make(map[string]engine.PolicyPatch, len(body.Groups))
	for name, raw := range body.Groups {
		var g engine.PolicyPatch
		var gprobe map[string]json.RawMessage
		if err := decodeObject(raw, &g); err != nil {
			return engine.PolicyUpdate{}, engine.Invalid("groups."+name, engine.AsError(err).Msg)
		}
		_ = json.Unmarshal(raw, &gprobe) // an object: decodeObject said so
		namedNulls(&g, gprobe)
		groups[name] = g
	}
	u.Groups = &groups
	return u, nil
}

// namedNulls marks the lists a body names as null: json leaves their
// pointers nil, as if the body did not name them, but null sets a list.
func namedNulls(p *engine.PolicyPatch, probe map[string]json.RawMessage) {
	if _, ok := probe["allowed_channels"]; ok && p.AllowedChannels == nil {
		p.AllowedChannels = new([]engine.Channel)
	}
	for key, l := range map[string]**[]string{
		"sms_countries":     &p.SMSCountries,
		"trusted_networks":  &p.TrustedNetworks,
		"blocked_networks":  &p.BlockedNetworks,
		"blocked_countries": &p.BlockedCountries,
		"manager_emails":    &p.ManagerEmails,
		"return_urls":       &p.ReturnURLs,
	} {
		if _, ok := probe[key]; ok && *l == nil {
			*l = new([]string)
		}
	}
}
