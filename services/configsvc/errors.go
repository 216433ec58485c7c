package configsvc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors of the store and the service. They are translated to gRPC
// codes only at the gRPC boundary (grpcError).
var (
	// ErrInvalidArgument: the request is malformed (bad hub id, URL, body...).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTooManyURLs: the hub already has the maximum number of callback URLs.
	ErrTooManyURLs = errors.New("too many callback urls")
	// ErrDuplicateURL: the hub already has this callback URL.
	ErrDuplicateURL = errors.New("callback url already configured")
	// ErrURLNotFound: the hub has no such callback URL.
	ErrURLNotFound = errors.New("callback url not found")
	// ErrTokenNotFound is what a TokenStore wraps when a token does not exist.
	ErrTokenNotFound = errors.New("hub token not found")
	// ErrTooManyTokens: the hub has as many tokens as the store allows.
	ErrTooManyTokens = errors.New("too many hub tokens")
	// ErrRateLimited: the caller did this too often; it may again later.
	ErrRateLimited = errors.New("rate limited")
	// ErrConflict: a write lost the optimistic-concurrency race too many times.
	ErrConflict = errors.New("concurrent update conflict")
	// ErrUnavailable: a dependency (Redis, JetStream) cannot be reached or
	// the service is starting or stopping.
	ErrUnavailable = errors.New("unavailable")
)

// grpcError maps an error of this package to a gRPC status error. Status
// errors pass through unchanged.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, ErrTooManyURLs), errors.Is(err, ErrTooManyTokens):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrDuplicateURL):
		code = codes.AlreadyExists
	case errors.Is(err, ErrURLNotFound), errors.Is(err, ErrTokenNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrRateLimited):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrConflict):
		code = codes.Aborted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrUnavailable):
		// Redis or JetStream trouble: the client may retry.
		code = codes.Unavailable
	default:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}
