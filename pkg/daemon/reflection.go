package daemon

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	v1reflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1"
	v1alphareflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// registerReflection serves server reflection (v1 and v1alpha) that
// describes the services registered on s and the files they are made of,
// nothing else: the binary links in internal messages too (delivery jobs,
// attempt records), which the default reflection would describe to anyone,
// since reflection needs no token.
func registerReflection(s *grpc.Server) {
	opts := reflection.ServerOptions{
		Services:           s,
		DescriptorResolver: &publicFiles{s: s},
		ExtensionResolver:  new(protoregistry.Types),
	}
	v1reflectiongrpc.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	v1alphareflectiongrpc.RegisterServerReflectionServer(s, reflection.NewServer(opts))
}

// publicFiles resolves the descriptors of the files that define the
// services of s, and of the files those import, from the global registry.
// It reads s's services at the first request, once they are registered.
type publicFiles struct {
	s     *grpc.Server
	once  sync.Once
	files protoregistry.Files
}

func (p *publicFiles) load() {
	p.once.Do(func() {
		var add func(fd protoreflect.FileDescriptor)
		add = func(fd protoreflect.FileDescriptor) {
			if _, err := p.files.FindFileByPath(fd.Path()); err == nil {
				return
			}
			imports := fd.Imports()
			for i := range imports.Len() {
				add(imports.Get(i).FileDescriptor)
			}
			_ = p.files.RegisterFile(fd)
		}
		for name := range p.s.GetServiceInfo() {
			if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name)); err == nil {
				add(d.ParentFile())
			}
		}
	})
}

// FindFileByPath implements protodesc.Resolver.
func (p *publicFiles) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	p.load()
	return p.files.FindFileByPath(path)
}

// FindDescriptorByName implements protodesc.Resolver.
func (p *publicFiles) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	p.load()
	return p.files.FindDescriptorByName(name)
}
