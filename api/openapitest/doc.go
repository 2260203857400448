// Package openapitest checks HTTP exchanges with stepupd against
// api/openapi.yaml, so every API test also tests the document.
//
// Validate checks one request and its answer; RoundTripper and Client wrap
// an http.Client so that every exchange a test makes is checked. A request
// the document refuses must be refused by the server (4xx); every answer,
// refused or not, must be one the document describes for that operation,
// status and content type. Unknown paths and methods must be answered with
// the error body and 404 or 405.
//
// It is test support: it reports through testing.TB and never panics a
// server or changes a request.
package openapitest
