package operations

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// server implements hubhooksv1.OperationsServiceServer over a Service.
type server struct {
	hubhooksv1.UnimplementedOperationsServiceServer
	svc *Service
}

func (g *server) ExplainDomainEvent(ctx context.Context, req *hubhooksv1.ExplainDomainEventRequest) (*hubhooksv1.ExplainDomainEventResponse, error) {
	resp, err := g.svc.explain(ctx, req)
	return resp, g.svc.grpcError(ctx, "explain domain event", err)
}

func (g *server) RecoverDeliveries(req *hubhooksv1.RecoverDeliveriesRequest, stream grpc.ServerStreamingServer[hubhooksv1.RecoverDeliveriesProgress]) error {
	return g.svc.grpcError(stream.Context(), "recover deliveries", g.svc.recoverDeliveries(stream.Context(), req, stream.Send))
}

func (g *server) ReplayDomainEvents(req *hubhooksv1.ReplayDomainEventsRequest, stream grpc.ServerStreamingServer[hubhooksv1.ReplayDomainEventsProgress]) error {
	return g.svc.grpcError(stream.Context(), "replay domain events", g.svc.replay(stream.Context(), req, stream.Send))
}

func (g *server) WatchOperationalEvents(req *hubhooksv1.WatchOperationalEventsRequest, stream grpc.ServerStreamingServer[hubhooksv1.OperationalEvent]) error {
	err := g.svc.watchOps(stream.Context(), req, stream.Send)
	if stream.Context().Err() != nil {
		return nil // the caller went away: the watch is over
	}
	return g.svc.grpcError(stream.Context(), "watch operational events", err)
}

// isNotFound reports whether err is a NotFound gRPC status.
func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// invalidError is a request refused with InvalidArgument; its message says
// how to fix the call.
type invalidError struct{ err error }

func (e invalidError) Error() string { return e.err.Error() }
func (e invalidError) Unwrap() error { return e.err }

func invalidf(format string, args ...any) error { return invalidError{fmt.Errorf(format, args...)} }

// preconditionError is a request the hub's state refuses
// (FailedPrecondition).
type preconditionError struct{ msg string }

func (e preconditionError) Error() string { return e.msg }

// grpcError maps an error to a gRPC status: gRPC statuses (from configsvc)
// pass as they are; store outages are Unavailable.
func (s *Service) grpcError(ctx context.Context, op string, err error) error {
	var inv invalidError
	var pre preconditionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, inv.Error())
	case errors.As(err, &pre):
		return status.Error(codes.FailedPrecondition, pre.Error())
	case errors.Is(err, logstore.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	s.log.Error(op+" failed", "err", err)
	return status.Errorf(codes.Unavailable, "%s: %v; try again", op, err)
}

func (g *server) ListDeadLetters(ctx context.Context, req *hubhooksv1.ListDeadLettersRequest) (*hubhooksv1.ListDeadLettersResponse, error) {
	resp, err := g.svc.listDeadLetters(ctx, req)
	return resp, g.svc.grpcError(ctx, "list dead letters", err)
}
