package publisher

//go:generate go run ./internal/gen -o constructors_gen.go
