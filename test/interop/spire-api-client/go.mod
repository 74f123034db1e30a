module chaperone.test/interop/spire-api-client

go 1.24.0

// spire-api-sdk at the version SPIRE v1.13.3 (SPIRE_VERSION in ../peers.ts) requires; grpc and protobuf as it pins them.
require (
	github.com/spiffe/spire-api-sdk v1.2.5-0.20250109200630-101d5e7de758
	google.golang.org/grpc v1.76.0
	google.golang.org/protobuf v1.36.10
)

require (
	golang.org/x/net v0.42.0 // indirect
	golang.org/x/sys v0.34.0 // indirect
	golang.org/x/text v0.27.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250804133106-a7a43d27e69b // indirect
)
