// spiffe-probe: go-spiffe's Workload API client, driven by the interop suite (test/interop/go-spiffe.interop.ts)
// against the Chaperone agent. The socket comes from SPIFFE_ENDPOINT_SOCKET, as go-spiffe reads it. Each command
// prints one JSON object per result on stdout; a failure prints {"error", "code"} (the gRPC status go-spiffe saw)
// and exits 1.
//
//	spiffe-probe x509            FetchX509Context: the SVIDs' IDs and serial numbers, the bundles' trust domains
//	spiffe-probe x509-bundles    FetchX509Bundles
//	spiffe-probe watch N         WatchX509Context: the first N updates, then exit
//	spiffe-probe jwt AUDIENCE    FetchJWTSVID, then ValidateJWTSVID of that token for AUDIENCE
//	spiffe-probe validate AUDIENCE TOKEN
//	spiffe-probe jwt-bundles     FetchJWTBundles
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/status"
)

func emit(v any) {
	_ = json.NewEncoder(os.Stdout).Encode(v)
}

func fail(err error) {
	emit(map[string]string{"error": err.Error(), "code": status.Code(err).String()})
	os.Exit(1)
}

// trustDomains names the bundles' trust domains, sorted.
func trustDomains[B interface{ TrustDomain() spiffeid.TrustDomain }](bundles []B) []string {
	domains := []string{}
	for _, b := range bundles {
		domains = append(domains, b.TrustDomain().String())
	}
	sort.Strings(domains)
	return domains
}

func x509Summary(c *workloadapi.X509Context) map[string]any {
	ids := []string{}
	serials := []string{}
	for _, svid := range c.SVIDs {
		ids = append(ids, svid.ID.String())
		serials = append(serials, svid.Certificates[0].SerialNumber.String())
	}
	return map[string]any{"ids": ids, "serials": serials, "bundles": trustDomains(c.Bundles.Bundles())}
}

type watcher struct {
	left int
	done chan struct{}
}

func (w *watcher) OnX509ContextUpdate(c *workloadapi.X509Context) {
	emit(x509Summary(c))
	w.left--
	if w.left == 0 {
		close(w.done)
	}
}

func (w *watcher) OnX509ContextWatchError(err error) {
	emit(map[string]string{"watchError": err.Error(), "code": status.Code(err).String()})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: spiffe-probe x509|x509-bundles|watch N|jwt AUDIENCE|validate AUDIENCE TOKEN|jwt-bundles")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch os.Args[1] {
	case "x509":
		c, err := workloadapi.FetchX509Context(ctx)
		if err != nil {
			fail(err)
		}
		emit(x509Summary(c))
	case "x509-bundles":
		set, err := workloadapi.FetchX509Bundles(ctx)
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"bundles": trustDomains(set.Bundles())})
	case "watch":
		n, _ := strconv.Atoi(os.Args[2])
		w := &watcher{left: n, done: make(chan struct{})}
		watchCtx, stop := context.WithCancel(ctx)
		go func() { <-w.done; stop() }()
		err := workloadapi.WatchX509Context(watchCtx, w)
		if w.left > 0 {
			fail(err)
		}
	case "jwt":
		svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: os.Args[2]})
		if err != nil {
			fail(err)
		}
		validated, err := workloadapi.ValidateJWTSVID(ctx, svid.Marshal(), os.Args[2])
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"id": svid.ID.String(), "token": svid.Marshal(), "validatedId": validated.ID.String()})
	case "validate":
		validated, err := workloadapi.ValidateJWTSVID(ctx, os.Args[3], os.Args[2])
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"validatedId": validated.ID.String()})
	case "jwt-bundles":
		set, err := workloadapi.FetchJWTBundles(ctx)
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"bundles": trustDomains(set.Bundles())})
	default:
		fmt.Fprintf(os.Stderr, "spiffe-probe: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
