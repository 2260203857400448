package twilio

import "github.com/stepup-auth/stepup/message"

// DeliveryState translates a MessageStatus of Twilio's status callback into
// a challenge's delivery state; ok is false for statuses stepup does not
// track.
func DeliveryState(status string) (st message.DeliveryState, ok bool) {
	switch status {
	case "delivered", "read":
		return message.DeliveryDelivered, true
	case "undelivered", "failed":
		return message.DeliveryUndelivered, true
	case "sent", "queued", "accepted", "sending", "scheduled":
		return message.DeliverySent, true
	}
	return "", false
}
