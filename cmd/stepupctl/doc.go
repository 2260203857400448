// Command stepupctl is the account manager's and operator's command line
// over stepup's HTTP API (it speaks only HTTP, through package client, and
// never touches Redis or the engine).
//
// Account managers, with a manager key of their tenant:
//
//	stepupctl policy get
//	stepupctl policy set --mode required --grace-logins 3 --allowed-channels totp,sms
//	stepupctl policy set -f policy.yaml
//	stepupctl users show alice
//	stepupctl users reset alice --reason "lost phone"
//	stepupctl users disable-all --reason "moving to SSO" [--group staff]
//	stepupctl events [--user ID] [--type T] [--since 24h] [--limit N] [-f]
//
// Operators, with the operator key:
//
//	stepupctl tenants create acme [--sender-name "Acme"]
//	stepupctl tenants list
//	stepupctl keys create <tenant-id> --kind app|manager [--label TEXT]
//	stepupctl keys list <tenant-id>
//	stepupctl keys revoke <tenant-id> <key-id>
//
// Global flags, before or after the command: --url (env STEPUP_URL,
// default http://127.0.0.1:8080), --key (env STEPUP_KEY) and -o table|json.
// Exit status: 0 success, 1 API or runtime error, 2 usage error.
package main
