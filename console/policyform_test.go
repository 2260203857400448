package console

import (
	"testing"

	"github.com/stepup-auth/stepup/engine"
)

// TestChannelBoxesOfferEveryChannel: the policy form offers every channel
// the engine knows, so saving it cannot drop one the form does not show.
func TestChannelBoxesOfferEveryChannel(t *testing.T) {
	boxes := channelBoxes([]engine.Channel{engine.ChannelSMS})
	if len(boxes) != len(engine.AllChannels) {
		t.Fatalf("%d boxes for %d channels: %+v", len(boxes), len(engine.AllChannels), boxes)
	}
	for _, c := range engine.AllChannels {
		if channelLabels[c] == "" {
			t.Errorf("channel %q has no label", c)
		}
	}
	if boxes[0].Value != string(engine.ChannelSMS) || !boxes[0].Checked {
		t.Errorf("first box %+v, want the allowed SMS, checked", boxes[0])
	}
	for _, b := range boxes[1:] {
		if b.Checked {
			t.Errorf("%s checked though not allowed", b.Value)
		}
	}
}
