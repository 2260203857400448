package message

// Kind is the kind of a queued job; it selects the job's payload and handler.
type Kind string

// The job kinds.
const (
	KindSMS    Kind = "sms"    // payload SMS
	KindMail   Kind = "mail"   // payload Mail
	KindNotify Kind = "notify" // payload Notice
)

// DeliveryState is a challenge's delivery field: where its code's message
// is. The queue sets queued, sent, failed and dropped; a provider's delivery
// report sets delivered, undelivered or sent.
type DeliveryState string

// The delivery states.
const (
	DeliveryQueued      DeliveryState = "queued"
	DeliverySent        DeliveryState = "sent"
	DeliveryDelivered   DeliveryState = "delivered"
	DeliveryUndelivered DeliveryState = "undelivered"
	DeliveryFailed      DeliveryState = "failed"
	DeliveryDropped     DeliveryState = "dropped"
)

// Audience is who a Notice is for.
type Audience string

// The audiences.
const (
	AudienceUser     Audience = "user"
	AudienceManagers Audience = "managers"
)

// SMS is the payload of a KindSMS job.
type SMS struct {
	To   string `json:"to"`   // E.164
	Body string `json:"body"` // the text, usually carrying a code
}

// Mail is the payload of a KindMail job: a message ready to send. The
// sender's address is the installation's, added when it is sent.
type Mail struct {
	To       []string `json:"to"`
	FromName string   `json:"from_name"`
	Subject  string   `json:"subject"`
	Text     string   `json:"text"`
	HTML     string   `json:"html,omitempty"`
}

// Notice is the payload of a KindNotify job: an event to render into mails.
type Notice struct {
	Audience   Audience `json:"audience"`
	Event      Event    `json:"event"`
	To         []string `json:"to"`
	Name       string   `json:"name,omitempty"`
	Locale     string   `json:"locale,omitempty"`
	TimeZone   string   `json:"time_zone,omitempty"`
	SenderName string   `json:"sender_name"`
	ReportURL  string   `json:"report_url,omitempty"`
}
