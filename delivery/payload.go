package delivery

import (
	"encoding/base64"
	"fmt"

	"github.com/stepup-auth/stepup/internal/seal"
)

// DefaultGroup is the consumer group of the workers.
const DefaultGroup = "workers"

// SealPayload seals a job payload with the "queue" box and encodes it for
// the data field.
func SealPayload(box *seal.Box, payload []byte) string {
	return base64.StdEncoding.EncodeToString(box.Seal(payload))
}

// openPayload reverses SealPayload.
func openPayload(box *seal.Box, data string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	plain, err := box.Open(raw)
	if err != nil {
		return nil, fmt.Errorf("open payload: %w", err)
	}
	return plain, nil
}
