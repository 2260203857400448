// Package config is stepupd's configuration: the [Config] struct, its
// defaults, loading from one YAML file plus STEPUP_* environment variables,
// and [Config.Validate], which names the offending key in every message.
//
// Every setting has one YAML key (for example sms.twilio.account_sid) and one
// environment name derived from it: "STEPUP_" followed by the key with dots
// replaced by "_" and upper-cased (STEPUP_SMS_TWILIO_ACCOUNT_SID). Because the
// words of a key may themselves contain "_", the environment names are built
// from the struct's koanf tags, never by splitting a variable's name.
//
// Only stepupd's wiring reads this package (cmd/stepupd and internal/app,
// which builds the server from a Config; e2e tests build Configs too);
// everything else takes its own Options struct, so the rest of the code base never depends on how settings are
// spelled on disk or in the environment. The package does no I/O beyond
// reading the config file and, in Validate, checking that the files the
// config names can be read.
package config
