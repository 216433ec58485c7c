// Package gateway serves the hubhooks HTTP/JSON API and the web console.
//
// The API is generated from the protos (grpc-gateway; the HTTP rules are in
// proto/hubhooks/v1/http.yaml): each request becomes a gRPC call to
// ConfigService, EventLogService or OperationsService over a client
// connection, carrying the
// caller's "Authorization: Bearer <token>" and nothing else, so the gRPC
// servers' authentication and tenant rules apply unchanged. The API is under
// /v1/, the OpenAPI document at /openapi.json, the console (every asset
// embedded in the binary) at /.
//
// hubd serves it beside its gRPC, dialling itself; the gateway binary serves
// it for the separate deployment, dialling configsvc and the logger.
//
//	gw, err := gateway.New(gateway.Config{Log: log}, configConn, logsConn)
//	...
//	err = gw.Serve(ctx, lis) // until ctx ends
package gateway
