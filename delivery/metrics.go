package delivery

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepup-auth/stepup/message"
)

// Outcomes of a job, the values of the outcome label.
const (
	OutcomeSent    = "sent"
	OutcomeRetried = "retried"
	OutcomeDead    = "dead"
	OutcomeDropped = "dropped"
)

// metrics are the worker's Prometheus collectors.
type metrics struct {
	jobs    *prometheus.CounterVec   // by kind, outcome
	latency *prometheus.HistogramVec // by kind, result (ok, error)
	dead    prometheus.Gauge         // entries in all dead-letter streams
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "stepup", Subsystem: "delivery", Name: "jobs_total",
			Help: "Delivery jobs processed, by kind and outcome (sent, retried, dead, dropped).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "stepup", Subsystem: "delivery", Name: "send_duration_seconds",
			Help:    "Time the provider took to accept or refuse a message.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind", "result"}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "stepup", Subsystem: "delivery", Name: "dead_letters",
			Help: "Jobs in the dead-letter streams of all shards.",
		}),
	}
	if reg != nil {
		m.jobs = register(reg, m.jobs)
		m.latency = register(reg, m.latency)
		m.dead = register(reg, m.dead)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same description, so several workers of one process share metrics.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("delivery: register metrics: " + err.Error())
	}
	return c
}

// kindLabel keeps the label set small whatever a malformed job claims.
func kindLabel(kind string) string {
	switch message.Kind(kind) {
	case message.KindSMS, message.KindMail, message.KindNotify:
		return kind
	}
	return "other"
}

func (m *metrics) job(kind, outcome string) {
	m.jobs.WithLabelValues(kindLabel(kind), outcome).Inc()
}

func (m *metrics) send(kind string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.latency.WithLabelValues(kindLabel(kind), result).Observe(d.Seconds())
}
