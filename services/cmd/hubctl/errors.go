package main

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes. Scripts may rely on them; `hubctl --help` lists them.
const (
	exitOK          = 0
	exitFailed      = 1 // the call failed for another reason (server error, I/O)
	exitUsage       = 2 // bad flags or arguments, or the server refused the request as invalid
	exitNotFound    = 3 // the hub's entry, URL or token does not exist
	exitAuth        = 4 // no token, a wrong token, or a token of another hub
	exitConflict    = 5 // the hub's state refuses the change (already exists, limit reached, precondition)
	exitUnavailable = 6 // hubhooks did not answer in time or is unavailable: try again
	exitUnsuccess   = 7 // the call worked and reports a failure (a test event the receiver refused, a replay with errors)
	exitInterrupted = 130
)

const exitCodesHelp = `Exit status:
  0    success
  1    the call failed (server error, I/O)
  2    bad flags or arguments, or a request the server refused as invalid
  3    not found (hub entry, callback URL, token)
  4    not authenticated or not allowed (--token / HUBHOOKS_TOKEN)
  5    refused by the hub's state (already exists, limit reached, precondition)
  6    hubhooks unavailable or too slow: try again (--addr, --timeout)
  7    done, with a failed outcome (a test event not accepted by the receiver)
  130  interrupted (Ctrl-C)
The reason is printed on stderr.`

// usageError is a mistake in the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// notFoundf is a name the client looked up and did not find (exit 3, as
// the server's NotFound).
func notFoundf(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

// outcomeError is a call that worked and reports a failed outcome (exit 7).
type outcomeError struct{ msg string }

func (e outcomeError) Error() string { return e.msg }

// exitCode maps an error to the exit status and the message for stderr.
// addr is where the call went, for the hint of an unreachable server.
func exitCode(err error, interrupted bool, addr string) (int, string) {
	var ue usageError
	var oe outcomeError
	switch {
	case err == nil:
		return exitOK, ""
	case errors.As(err, &ue):
		return exitUsage, ue.Error() + " (see --help)"
	case errors.As(err, &oe):
		return exitUnsuccess, oe.Error()
	case interrupted && (errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled):
		return exitInterrupted, "interrupted"
	}
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return exitUnavailable, err.Error() + " (raise --timeout?)"
		}
		return exitFailed, err.Error()
	}
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return exitUsage, "invalid request: " + msg
	case codes.NotFound:
		return exitNotFound, "not found: " + msg
	case codes.Unauthenticated:
		return exitAuth, "not authenticated: " + msg + " (pass --token or set HUBHOOKS_TOKEN)"
	case codes.PermissionDenied:
		return exitAuth, "permission denied: " + msg
	case codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted, codes.ResourceExhausted:
		return exitConflict, msg
	case codes.Unavailable:
		return exitUnavailable, "unavailable: " + msg + fmt.Sprintf(" (is hubhooks running at %s? --addr / HUBHOOKS_ADDR)", addr)
	case codes.DeadlineExceeded:
		return exitUnavailable, "no answer in time: " + msg + " (raise --timeout?)"
	case codes.Unimplemented:
		return exitFailed, "not served here: " + msg + fmt.Sprintf(" (%s does not serve this API: in the separate deployment the event log is the logger's, --logs-addr / HUBHOOKS_LOGS_ADDR)", addr)
	case codes.Canceled:
		return exitInterrupted, "cancelled: " + msg
	}
	return exitFailed, st.Code().String() + ": " + msg
}
