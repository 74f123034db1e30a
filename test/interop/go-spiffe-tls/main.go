// spiffe-tls: go-spiffe's spiffetls, driven by the interop suite (test/interop/go-spiffe-tls.interop.ts) against
// the Chaperone sidecar. Its SVID and bundle come from the Workload API at SPIFFE_ENDPOINT_SOCKET, through the
// X509Source spiffetls makes itself (the workload's default SVID: run it as a uid with one entry). The peer is
// authorized with tlsconfig.AuthorizeID, as a go-spiffe service would. Results are JSON lines on stdout.
//
//	spiffe-tls serve ADDR AUTHORIZED_ID        spiffetls.Listen; prints {"listening"} with the bound address, then
//	                                           per connection {"peer"} (and echoes what it reads) or {"error"}
//	spiffe-tls dial ADDR AUTHORIZED_ID MESSAGE spiffetls.Dial; sends MESSAGE, reads as many bytes back and prints
//	                                           {"ok", "server", "reply", "error"}; exits 1 unless the echo came back
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

func emit(v any) {
	_ = json.NewEncoder(os.Stdout).Encode(v)
}

func fail(err error) {
	emit(map[string]any{"ok": false, "error": err.Error()})
	os.Exit(1)
}

// serve accepts until killed; each connection's handshake (and so the authorizer's verdict) is reported.
func serve(ctx context.Context, addr string, authorized spiffeid.ID) {
	listener, err := spiffetls.Listen(ctx, "tcp", addr, tlsconfig.AuthorizeID(authorized))
	if err != nil {
		fail(err)
	}
	emit(map[string]string{"listening": listener.Addr().String()})
	for {
		conn, err := listener.Accept()
		if err != nil {
			fail(err)
		}
		go func(conn net.Conn) {
			defer conn.Close()
			// A bounded handshake: a peer that stalls must not keep the test waiting.
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			peer, err := spiffetls.PeerIDFromConn(conn)
			if err != nil {
				emit(map[string]string{"error": err.Error()})
				return
			}
			emit(map[string]string{"peer": peer.String()})
			_ = conn.SetDeadline(time.Time{})
			_, _ = io.Copy(conn, conn)
		}(conn)
	}
}

func dial(ctx context.Context, addr string, authorized spiffeid.ID, message string) {
	conn, err := spiffetls.Dial(ctx, "tcp", addr, tlsconfig.AuthorizeID(authorized))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	server, err := spiffetls.PeerIDFromConn(conn)
	if err != nil {
		fail(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	reply := make([]byte, len(message))
	_, err = conn.Write([]byte(message))
	n := 0
	if err == nil {
		// A sidecar that refuses us after the handshake (TLS 1.3 finishes the client's side first) closes here.
		n, err = io.ReadFull(conn, reply)
	}
	ok := err == nil && string(reply) == message
	result := map[string]any{"ok": ok, "server": server.String(), "reply": string(reply[:n])}
	if err != nil {
		result["error"] = err.Error()
	}
	emit(result)
	if !ok {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 4 || (os.Args[1] == "dial" && len(os.Args) < 5) {
		fmt.Fprintln(os.Stderr, "usage: spiffe-tls serve ADDR AUTHORIZED_ID | dial ADDR AUTHORIZED_ID MESSAGE")
		os.Exit(2)
	}
	authorized, err := spiffeid.FromString(os.Args[3])
	if err != nil {
		fail(err)
	}
	// Bounds getting the first SVID from the Workload API (NewX509Source waits for it) and dialing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch os.Args[1] {
	case "serve":
		serve(ctx, os.Args[2], authorized)
	case "dial":
		dial(ctx, os.Args[2], authorized, os.Args[4])
	default:
		fmt.Fprintf(os.Stderr, "spiffe-tls: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
