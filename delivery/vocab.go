package delivery

// Job kinds.
const (
	KindSMS    = "sms"
	KindMail   = "mail"
	KindNotify = "notify"
)

// Values of a challenge hash's delivery field maintained by the queue (the
// provider's status callback may later set delivered or undelivered).
const (
	DeliveryQueued      = "queued"
	DeliverySent        = "sent"
	DeliveryDelivered   = "delivered"
	DeliveryUndelivered = "undelivered"
	DeliveryFailed      = "failed"
	DeliveryDropped     = "dropped"
)
