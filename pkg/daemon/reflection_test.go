package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestReflectionDescribesThePublicAPIOnly: reflection lists the services
// served and describes them and what they are made of, but not the
// internal messages linked into the same binary (delivery jobs, attempt
// records), which anyone could otherwise read without a token.
func TestReflectionDescribesThePublicAPIOnly(t *testing.T) {
	_ = (*deliveryv1.DeliveryJob)(nil) // linked in, as in every service binary
	srv := daemon.NewGRPCServer(daemon.GRPCConfig{Log: slog.New(slog.DiscardHandler)})
	hubhooksv1.RegisterConfigServiceServer(srv, hubhooksv1.UnimplementedConfigServiceServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeListener(ctx, lis, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(cctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	symbol := func(name string) *rpb.ServerReflectionResponse {
		return ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}})
	}

	var services []string
	for _, s := range ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"hubhooks.v1.ConfigService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		found := false
		for _, s := range services {
			found = found || s == want
		}
		if !found {
			t.Errorf("services %v lack %s", services, want)
		}
	}
	for _, name := range []string{"hubhooks.v1.ConfigService", "hubhooks.v1.HubConfig", "hubhooks.v1.HttpRequest", "grpc.health.v1.Health"} {
		files := symbol(name).GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(files) == 0 {
			t.Errorf("%s: not described", name)
			continue
		}
		for _, b := range files {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				t.Fatal(err)
			}
			if fd.GetPackage() == "hubhooks.delivery.v1" || fd.GetPackage() == "hubhooks.events.v1" {
				t.Errorf("%s: describes the internal file %s", name, fd.GetName())
			}
		}
	}
	for _, name := range []string{"hubhooks.delivery.v1.DeliveryJob", "hubhooks.delivery.v1.AttemptRecorded", "hubhooks.delivery.v1.DeliveryFanout"} {
		if resp := symbol(name); resp.GetErrorResponse() == nil {
			t.Errorf("%s is described to anyone: %v", name, resp)
		}
	}
	if resp := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: "hubhooks/delivery/v1/delivery.proto"}}); resp.GetErrorResponse() == nil {
		t.Error("the internal delivery.proto is served by name")
	}
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF && err != nil && cctx.Err() != nil {
		t.Fatal(err)
	}
}
