// Package twilio sends SMS through Twilio's Programmable Messaging API with
// the official twilio-go client, checks the signature of Twilio's status
// callbacks and translates their MessageStatus words into a
// message.DeliveryState ([DeliveryState]): Twilio's vocabulary stops here.
//
// Send sorts failures for the delivery queue: network errors, 429 and 5xx
// are retried; Twilio's 4xx refusals (invalid number, unsubscribed
// recipient, …) are delivery.Permanent with the Twilio error code in the
// text. Error texts never carry the destination number or the body, even
// where Twilio's own message would.
package twilio
