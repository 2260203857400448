// Package client is a small Go client for stepup's HTTP API, for host
// applications (app key: login evaluation, challenges, the factor
// lifecycle), account managers (manager key: policy, user look-up and
// reset, the audit log) and operators (operator key: tenants and keys).
//
// It owns only the wire: the request and answer types mirror the API's
// JSON, and every error answer becomes an *APIError. It must not import the
// server's packages (engine, api, …) so that a host application can use it
// without pulling in the server's dependencies; it depends on the standard
// library alone.
//
//	c := client.New("https://stepup.example.com", os.Getenv("STEPUP_KEY"))
//	ev, err := c.Evaluate(ctx, client.EvaluateRequest{UserID: "u1", IP: ip, UserAgent: ua})
//	var apiErr *client.APIError
//	if errors.As(err, &apiErr) && apiErr.Code == "unauthenticated" { … }
//
// Every call is bounded by a timeout (DefaultTimeout, or WithTimeout). A
// call that got no answer from stepup — unreachable, timed out, a 5xx —
// fails with an error matching ErrUnavailable, and Evaluate then applies
// the client's FailMode (WithFailMode): FailSecure, the default, denies;
// FailSafe allows and marks the Evaluation FailOpen.
package client
