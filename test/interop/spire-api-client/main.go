// spire-api-client: an orchestrator's view of SPIRE's server API (spire.api.server.entry.v1.Entry), written the way
// spire-controller-manager talks to SPIRE: grpc-go over the server's Unix socket (unix://<path>, insecure transport
// credentials, WaitForReady), ListEntries paged at 200 until an empty next_page_token, BatchCreateEntry and
// BatchUpdateEntry in batches of 50, BatchUpdateEntry without an input mask (a full replace), and its
// "unsupported fields" probe. Driven by the interop suite (test/interop/spire-api-client.interop.ts), first against
// a real SPIRE server (proving this client right), then against Chaperone's SPIRE-compatible socket.
//
//	spire-api-client -socket PATH -trust-domain TD -parent-id spiffe://TD/PATH [-entries N] [-prefix /PATH]
//	                 [-federated TD1,TD2] [-set-bundles=false]
//
// Each step prints one JSON line {"step", "ok", "detail"} on stdout; the first failing step exits 1. Entries the
// client makes live under spiffe://TD<prefix>/; the ones that were there before are left alone and must be there,
// unchanged, at the end. The probe federates with two trust domains, whose bundles the client sets through
// spire.api.server.bundle.v1.Bundle (BatchSetFederatedBundle, and BatchDeleteFederatedBundle at the end); with
// -set-bundles=false they must be there already and are left alone.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	bundlev1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/bundle/v1"
	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The controller manager's sizes (spire-controller-manager pkg/spireapi/batch.go): creates and updates go in
// batches of 50, lists in pages of 200. Deletes go in batches of 50 here too (it uses 200 there).
const (
	createBatch = 50
	updateBatch = 50
	deleteBatch = 50
	listPage    = int32(200)
	// Pages of a filtered walk are smaller, so that each filter is also walked over several pages.
	filterPage = int32(25)
	// A walk of more pages than this is a server that never ends it.
	maxPages = 10_000
)

type line struct {
	Step   string `json:"step"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func emit(step string, ok bool, detail string) {
	_ = json.NewEncoder(os.Stdout).Encode(line{Step: step, OK: ok, Detail: detail})
}

// failure ends a step and the program.
type failure struct{ msg string }

func failf(format string, args ...any) { panic(failure{fmt.Sprintf(format, args...)}) }

func check(cond bool, format string, args ...any) {
	if !cond {
		failf(format, args...)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		failf("%s", describeErr(err))
	}
	return v
}

func describeErr(err error) string {
	if s, ok := status.FromError(err); ok {
		return fmt.Sprintf("RPC failed: %s %q", s.Code(), s.Message())
	}
	return err.Error()
}

// step runs fn; a failure inside it prints {ok: false} and exits 1, a return prints {ok: true, detail}.
func step(name string, fn func() string) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				f = failure{fmt.Sprintf("panic: %v", r)}
			}
			emit(name, false, f.msg)
			os.Exit(1)
		}
	}()
	emit(name, true, fn())
}

type client struct {
	entries entryv1.EntryClient
	bundles bundlev1.BundleClient
	td      string
	timeout time.Duration
}

func (c *client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

func (c *client) id(path string) *types.SPIFFEID {
	return &types.SPIFFEID{TrustDomain: c.td, Path: path}
}

func idString(id *types.SPIFFEID) string {
	if id == nil {
		return "<nil>"
	}
	return "spiffe://" + id.TrustDomain + id.Path
}

func parseID(s string) (*types.SPIFFEID, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "spiffe" || u.Host == "" || u.Path == "" {
		return nil, fmt.Errorf("not a SPIFFE ID with a path: %q", s)
	}
	return &types.SPIFFEID{TrustDomain: u.Host, Path: u.Path}, nil
}

// page is one ListEntries response's shape.
type page struct {
	n     int
	token string
}

func describePages(pages []page) string {
	parts := make([]string, 0, len(pages))
	for _, p := range pages {
		token := "token"
		if p.token == "" {
			token = "no token"
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", p.n, token))
	}
	return strings.Join(parts, ", ")
}

// list walks ListEntries as the controller manager does: from an empty token until the answer carries none.
func (c *client) list(filter *entryv1.ListEntriesRequest_Filter, pageSize int32) ([]*types.Entry, []page) {
	var all []*types.Entry
	var pages []page
	seenTokens := map[string]bool{}
	token := ""
	for {
		ctx, cancel := c.ctx()
		resp, err := c.entries.ListEntries(ctx, &entryv1.ListEntriesRequest{Filter: filter, PageSize: pageSize, PageToken: token})
		cancel()
		if err != nil {
			failf("ListEntries (page %d, page_size %d, token %q): %s", len(pages)+1, pageSize, token, describeErr(err))
		}
		pages = append(pages, page{len(resp.Entries), resp.NextPageToken})
		all = append(all, resp.Entries...)
		token = resp.NextPageToken
		if token == "" {
			return all, pages
		}
		check(!seenTokens[token], "ListEntries answered the token %q twice (pages so far: %s)", token, describePages(pages))
		seenTokens[token] = true
		check(len(pages) < maxPages, "ListEntries still had a next page after %d pages", maxPages)
	}
}

// checkWalk holds a paged walk to SPIRE's shape: every page within page_size, every non-empty page carrying a
// token, the walk ending with an empty page without one. With full, every data page but the last is full.
func checkWalk(what string, pages []page, pageSize int32, full bool) {
	last := pages[len(pages)-1]
	check(last.n == 0 && last.token == "", "%s: the walk must end with an empty page and an empty token, as SPIRE's does; pages: %s", what, describePages(pages))
	for i, p := range pages[:len(pages)-1] {
		check(p.n > 0, "%s: page %d is empty but carries a token; pages: %s", what, i+1, describePages(pages))
		check(p.n <= int(pageSize), "%s: page %d has %d entries, more than page_size %d", what, i+1, p.n, pageSize)
		if full && i < len(pages)-2 {
			check(p.n == int(pageSize), "%s: page %d has %d entries, not page_size %d, though more follow; pages: %s", what, i+1, p.n, pageSize, describePages(pages))
		}
	}
}

// ids of the entries, checking none is there twice.
func idSet(what string, entries []*types.Entry) map[string]*types.Entry {
	set := make(map[string]*types.Entry, len(entries))
	for _, e := range entries {
		check(e.Id != "", "%s: an entry without an ID (%s)", what, idString(e.SpiffeId))
		_, dup := set[e.Id]
		check(!dup, "%s: entry %s (%s) listed twice", what, e.Id, idString(e.SpiffeId))
		set[e.Id] = e
	}
	return set
}

func sameIDs(what string, got map[string]*types.Entry, want map[string]*types.Entry) {
	var missing, extra []string
	for id, e := range want {
		if _, ok := got[id]; !ok {
			missing = append(missing, id+" "+idString(e.SpiffeId))
		}
	}
	for id, e := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id+" "+idString(e.SpiffeId))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	check(len(missing) == 0 && len(extra) == 0, "%s: %d entries, expected %d; missing %d %v; unexpected %d %v", what, len(got), len(want), len(missing), first(missing, 5), len(extra), first(extra, 5))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "…")
	}
	return s
}

func selectorStrings(selectors []*types.Selector) []string {
	out := make([]string, 0, len(selectors))
	for _, s := range selectors {
		out = append(out, s.Type+":"+s.Value)
	}
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// diffEntry names each field of got that is not want's; lists (selectors, federates_with, dns_names) are compared
// as sets; id, revision_number and created_at are the caller's to check.
func diffEntry(want, got *types.Entry) []string {
	var diffs []string
	field := func(name string, w, g any) {
		if fmt.Sprint(w) != fmt.Sprint(g) {
			diffs = append(diffs, fmt.Sprintf("%s: sent %v, got %v", name, w, g))
		}
	}
	field("spiffe_id", idString(want.SpiffeId), idString(got.SpiffeId))
	field("parent_id", idString(want.ParentId), idString(got.ParentId))
	field("selectors", sorted(selectorStrings(want.Selectors)), sorted(selectorStrings(got.Selectors)))
	field("x509_svid_ttl", want.X509SvidTtl, got.X509SvidTtl)
	field("jwt_svid_ttl", want.JwtSvidTtl, got.JwtSvidTtl)
	field("federates_with", sorted(want.FederatesWith), sorted(got.FederatesWith))
	field("admin", want.Admin, got.Admin)
	field("downstream", want.Downstream, got.Downstream)
	field("expires_at", want.ExpiresAt, got.ExpiresAt)
	field("dns_names", sorted(want.DnsNames), sorted(got.DnsNames))
	field("store_svid", want.StoreSvid, got.StoreSvid)
	field("hint", want.Hint, got.Hint)
	return diffs
}

// normalized is a copy of e with its lists (selectors, federates_with, dns_names) sorted: SPIRE's create echo lists
// them sorted, GetEntry and ListEntries in the order they were sent.
func normalized(e *types.Entry) *types.Entry {
	if e == nil {
		return nil
	}
	c := proto.Clone(e).(*types.Entry)
	sort.Slice(c.Selectors, func(i, j int) bool {
		return c.Selectors[i].Type+":"+c.Selectors[i].Value < c.Selectors[j].Type+":"+c.Selectors[j].Value
	})
	sort.Strings(c.FederatesWith)
	sort.Strings(c.DnsNames)
	return c
}

// sameEntry: the same entry, field for field, lists compared as sets.
func sameEntry(a, b *types.Entry) bool { return proto.Equal(normalized(a), normalized(b)) }

// lists describes the order an answer gave an entry's lists in.
func lists(e *types.Entry) string {
	return fmt.Sprintf("selectors %v, federates_with %v, dns_names %v", selectorStrings(e.Selectors), e.FederatesWith, e.DnsNames)
}

func checkEntry(what string, want, got *types.Entry) {
	check(got != nil, "%s: no entry", what)
	diffs := diffEntry(want, got)
	check(len(diffs) == 0, "%s: fields not as stored: %s", what, strings.Join(diffs, "; "))
}

// wantStatus checks one batch result's status: its code, and its message when one is given (a prefix ending with
// "…" when the rest is the datastore's own wording).
func wantStatus(what string, s *types.Status, code codes.Code, message string) {
	check(s != nil, "%s: a result without a status", what)
	check(codes.Code(s.Code) == code, "%s: status %s %q, expected %s", what, codes.Code(s.Code), s.Message, code)
	if prefix, ok := strings.CutSuffix(message, "…"); ok {
		check(strings.HasPrefix(s.Message, prefix), "%s: message %q, expected one starting %q", what, s.Message, prefix)
	} else if message != "" {
		check(s.Message == message, "%s: message %q, expected %q", what, s.Message, message)
	}
}

func wantRPCError(what string, err error, code codes.Code, message string) {
	check(err != nil, "%s: succeeded, expected %s %q", what, code, message)
	s, _ := status.FromError(err)
	check(s.Code() == code && s.Message() == message, "%s: %s %q, expected %s %q", what, s.Code(), s.Message(), code, message)
}

func (c *client) create(entries []*types.Entry) []*entryv1.BatchCreateEntryResponse_Result {
	ctx, cancel := c.ctx()
	defer cancel()
	resp := must(c.entries.BatchCreateEntry(ctx, &entryv1.BatchCreateEntryRequest{Entries: entries}))
	check(len(resp.Results) == len(entries), "BatchCreateEntry: %d results for %d entries", len(resp.Results), len(entries))
	return resp.Results
}

func (c *client) update(entries []*types.Entry) []*entryv1.BatchUpdateEntryResponse_Result {
	ctx, cancel := c.ctx()
	defer cancel()
	resp := must(c.entries.BatchUpdateEntry(ctx, &entryv1.BatchUpdateEntryRequest{Entries: entries}))
	check(len(resp.Results) == len(entries), "BatchUpdateEntry: %d results for %d entries", len(resp.Results), len(entries))
	return resp.Results
}

func (c *client) delete(ids []string) []*entryv1.BatchDeleteEntryResponse_Result {
	ctx, cancel := c.ctx()
	defer cancel()
	resp := must(c.entries.BatchDeleteEntry(ctx, &entryv1.BatchDeleteEntryRequest{Ids: ids}))
	check(len(resp.Results) == len(ids), "BatchDeleteEntry: %d results for %d IDs", len(resp.Results), len(ids))
	return resp.Results
}

func (c *client) get(id string) (*types.Entry, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	return c.entries.GetEntry(ctx, &entryv1.GetEntryRequest{Id: id})
}

func (c *client) count(filter *entryv1.CountEntriesRequest_Filter) int {
	ctx, cancel := c.ctx()
	defer cancel()
	return int(must(c.entries.CountEntries(ctx, &entryv1.CountEntriesRequest{Filter: filter})).Count)
}

// batches calls fn on each run of at most size items, as the controller manager's runBatch does.
func batches(n, size int, fn func(start, end int)) {
	for start := 0; start < n; start += size {
		fn(start, min(start+size, n))
	}
}

// selfSignedCA is a CA certificate for a federated trust domain's bundle (its key is thrown away).
func selfSignedCA(td string) []byte {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{Organization: []string{"spire-api-client"}, CommonName: td},
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: td}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return must(x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key))
}

// selector matching as SPIRE's datastore does it, to compute what a filter must answer from the full list.
func matches(entry []string, filter []string, match types.SelectorMatch_MatchBehavior) bool {
	in := func(set []string, s string) bool { return slices.Contains(set, s) }
	switch match {
	case types.SelectorMatch_MATCH_EXACT:
		return slices.Equal(sorted(entry), sorted(filter))
	case types.SelectorMatch_MATCH_SUBSET:
		for _, s := range entry {
			if !in(filter, s) {
				return false
			}
		}
		return len(entry) > 0
	case types.SelectorMatch_MATCH_SUPERSET:
		for _, s := range filter {
			if !in(entry, s) {
				return false
			}
		}
		return true
	case types.SelectorMatch_MATCH_ANY:
		for _, s := range filter {
			if in(entry, s) {
				return true
			}
		}
		return false
	}
	return false
}

func toSelectors(strs ...string) []*types.Selector {
	out := make([]*types.Selector, 0, len(strs))
	for _, s := range strs {
		t, v, _ := strings.Cut(s, ":")
		out = append(out, &types.Selector{Type: t, Value: v})
	}
	return out
}

func main() {
	socket := flag.String("socket", "", "the server API socket's path (required)")
	trustDomain := flag.String("trust-domain", "", "the server's trust domain, e.g. example.org (required)")
	parentFlag := flag.String("parent-id", "", "the parent ID of the entries, e.g. the agent's ID (required)")
	n := flag.Int("entries", 450, "how many workload entries to create, list, update and delete")
	prefix := flag.String("prefix", "/spire-api-client", "the path under which the client's entries live")
	federated := flag.String("federated", "fed-a.example,fed-b.example", "two trust domains whose bundles the client sets, for federates_with")
	setBundles := flag.Bool("set-bundles", true, "set the -federated trust domains' bundles through the Bundle API (else they must exist)")
	acceptsUnknownFederation := flag.Bool("accepts-federation-before-bundle", false, "the server creates an entry federating with a trust domain it holds no bundle for (Chaperone; SPIRE refuses it)")
	timeout := flag.Duration("timeout", 30*time.Second, "each call's deadline")
	flag.Parse()
	if *socket == "" || *trustDomain == "" || *parentFlag == "" || *n < 10 {
		fmt.Fprintln(os.Stderr, "usage: spire-api-client -socket PATH -trust-domain TD -parent-id spiffe://TD/PATH [-entries N (>= 10)] [-prefix /PATH]")
		os.Exit(2)
	}
	feds := strings.Split(*federated, ",")
	if len(feds) != 2 {
		fmt.Fprintln(os.Stderr, "-federated takes two trust domains")
		os.Exit(2)
	}

	c := &client{td: *trustDomain, timeout: *timeout}
	var parent *types.SPIFFEID
	step("flags", func() string {
		parent = must(parseID(*parentFlag))
		check(parent.TrustDomain == c.td, "-parent-id %s is not in -trust-domain %s", *parentFlag, c.td)
		return fmt.Sprintf("socket %s, parent %s, %d entries under %s", *socket, idString(parent), *n, *prefix)
	})

	// Dialled as spire-controller-manager's DialSocket does (pkg/spireapi/client.go).
	target := "unix:" + *socket
	if strings.HasPrefix(*socket, "/") {
		target = "unix://" + *socket
	}
	conn := must(grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.WaitForReady(true))))
	defer func() { _ = conn.Close() }()
	c.entries = entryv1.NewEntryClient(conn)
	c.bundles = bundlev1.NewBundleClient(conn)
	start := time.Now()

	// What was there before the client: listed, left alone, there again at the end.
	var before map[string]*types.Entry
	step("baseline", func() string {
		entries, pages := c.list(nil, listPage)
		checkWalk("ListEntries before", pages, listPage, true)
		before = idSet("ListEntries before", entries)
		counted := c.count(nil)
		check(counted == len(before), "CountEntries says %d, ListEntries listed %d", counted, len(before))
		for _, e := range before {
			check(!strings.HasPrefix(e.SpiffeId.GetPath(), *prefix+"/"), "entry %s (%s) is already under %s: the client's entries are left from an earlier run", e.Id, idString(e.SpiffeId), *prefix)
		}
		return fmt.Sprintf("%d entries there before; pages: %s", len(before), describePages(pages))
	})

	step("federated-bundles", func() string {
		if !*setBundles {
			return "left to the caller: " + strings.Join(feds, ", ")
		}
		bundles := make([]*types.Bundle, 0, len(feds))
		for _, td := range feds {
			bundles = append(bundles, &types.Bundle{TrustDomain: td, X509Authorities: []*types.X509Certificate{{Asn1: selfSignedCA(td)}}})
		}
		ctx, cancel := c.ctx()
		defer cancel()
		resp := must(c.bundles.BatchSetFederatedBundle(ctx, &bundlev1.BatchSetFederatedBundleRequest{Bundle: bundles}))
		check(len(resp.Results) == len(bundles), "BatchSetFederatedBundle: %d results for %d bundles", len(resp.Results), len(bundles))
		for i, r := range resp.Results {
			wantStatus("BatchSetFederatedBundle "+feds[i], r.Status, codes.OK, "")
			check(r.Bundle.GetTrustDomain() == feds[i], "BatchSetFederatedBundle result %d is for %q, expected %q", i, r.Bundle.GetTrustDomain(), feds[i])
		}
		return "bundles set for " + strings.Join(feds, ", ")
	})

	// spire-controller-manager's GetUnsupportedFields (pkg/spireapi/entryapi.go), as it sends it: a field that is
	// not echoed back is one it stops using.
	step("unsupported-fields-probe", func() string {
		testID := c.id("/spire-controller-manager/unsupported-fields-test")
		results := c.create([]*types.Entry{{
			ParentId: testID, SpiffeId: testID, Selectors: toSelectors("a:1"),
			X509SvidTtl: 60, JwtSvidTtl: 60, StoreSvid: true, Hint: "hint",
		}})
		r := results[0]
		wantStatus("the controller manager's probe entry", r.Status, codes.OK, "OK")
		check(r.Entry.GetId() != "", "the probe entry came back without an ID")
		var unsupported []string
		if r.Entry.JwtSvidTtl == 0 {
			unsupported = append(unsupported, "jwtSVIDTTL")
		}
		if r.Entry.Hint == "" {
			unsupported = append(unsupported, "hint")
		}
		if !r.Entry.StoreSvid {
			unsupported = append(unsupported, "storeSVID")
		}
		check(len(unsupported) == 0, "the controller manager would think these fields unsupported: %v", unsupported)
		deleted := c.delete([]string{r.Entry.Id})
		wantStatus("deleting the probe entry", deleted[0].Status, codes.OK, "OK")
		return "jwt_svid_ttl, hint and store_svid echoed; the entry deleted"
	})

	// The probe: every field an entry has, read back three ways.
	createdAtLow := time.Now().Unix() - 5
	probe := &types.Entry{
		SpiffeId:       c.id(*prefix + "/probe"),
		ParentId:       parent,
		Selectors:      toSelectors("unix:uid:1000", "unix:gid:1000"),
		X509SvidTtl:    3600,
		JwtSvidTtl:     300,
		FederatesWith:  []string{feds[0], "spiffe://" + feds[1]},
		Admin:          true,
		Downstream:     true,
		ExpiresAt:      time.Now().Add(48 * time.Hour).Unix(),
		DnsNames:       []string{"probe.example.org", "probe-alt.example.org"},
		RevisionNumber: 7,
		StoreSvid:      true,
		Hint:           "spire-api-client probe",
	}
	// As it is stored: federates_with by trust domain name, revision 0 whatever was sent.
	probeStored := proto.Clone(probe).(*types.Entry)
	probeStored.FederatesWith = []string{feds[0], feds[1]}
	var probeEntry *types.Entry
	step("probe-create", func() string {
		r := c.create([]*types.Entry{probe})[0]
		wantStatus("BatchCreateEntry of the probe", r.Status, codes.OK, "OK")
		checkEntry("BatchCreateEntry's echo of the probe", probeStored, r.Entry)
		check(r.Entry.Id != "", "the probe came back without an ID")
		check(r.Entry.RevisionNumber == 0, "a new entry's revision_number is %d, expected 0 (the one sent, 7, is not stored)", r.Entry.RevisionNumber)
		now := time.Now().Unix()
		check(r.Entry.CreatedAt >= createdAtLow && r.Entry.CreatedAt <= now+5, "created_at %d is not the time of creation (%d…%d)", r.Entry.CreatedAt, createdAtLow, now)
		probeEntry = r.Entry
		return fmt.Sprintf("id %s, revision 0, created_at %d; lists in the order %s", r.Entry.Id, r.Entry.CreatedAt, lists(r.Entry))
	})

	step("probe-get", func() string {
		got := must(c.get(probeEntry.Id))
		checkEntry("GetEntry of the probe", probeStored, got)
		check(sameEntry(got, probeEntry), "GetEntry's probe differs from BatchCreateEntry's echo:\n got %v\nwant %v", got, probeEntry)
		return "every field as created, as the create's echo; lists in the order " + lists(got)
	})

	step("probe-list", func() string {
		entries, pages := c.list(&entryv1.ListEntriesRequest_Filter{BySpiffeId: probe.SpiffeId}, listPage)
		checkWalk("ListEntries by the probe's SPIFFE ID", pages, listPage, true)
		check(len(entries) == 1, "ListEntries by the probe's SPIFFE ID: %d entries, expected 1", len(entries))
		check(sameEntry(entries[0], probeEntry), "ListEntries' probe differs from BatchCreateEntry's echo:\n got %v\nwant %v", entries[0], probeEntry)
		return fmt.Sprintf("every field as created; lists in the order %s; pages: %s", lists(entries[0]), describePages(pages))
	})

	// The workload entries, spread over three parents (nodes) and five namespaces, each with its own pod UID.
	parents := []*types.SPIFFEID{parent, c.id(*prefix + "/node-b"), c.id(*prefix + "/node-c")}
	workloads := make([]*types.Entry, *n)
	for i := range workloads {
		workloads[i] = &types.Entry{
			SpiffeId:    c.id(fmt.Sprintf("%s/ns-%d/workload-%04d", *prefix, i%5, i)),
			ParentId:    parents[i%3],
			Selectors:   toSelectors(fmt.Sprintf("k8s:ns:ns-%d", i%5), fmt.Sprintf("k8s:pod-uid:uid-%04d", i)),
			DnsNames:    []string{fmt.Sprintf("workload-%04d.ns-%d.svc", i, i%5)},
			X509SvidTtl: 600,
		}
	}
	created := make([]*types.Entry, *n)
	step("batch-create", func() string {
		calls := 0
		batches(*n, createBatch, func(start, end int) {
			calls++
			for j, r := range c.create(workloads[start:end]) {
				what := fmt.Sprintf("BatchCreateEntry result %d of batch %d", j, calls)
				wantStatus(what, r.Status, codes.OK, "OK")
				checkEntry(what+" (results in request order)", workloads[start+j], r.Entry)
				check(r.Entry.Id != "", "%s: no ID", what)
				created[start+j] = r.Entry
			}
		})
		return fmt.Sprintf("%d entries in %d calls of at most %d, each result OK and in request order", *n, calls, createBatch)
	})

	// The whole store as it must be now.
	want := map[string]*types.Entry{probeEntry.Id: probeEntry}
	for id, e := range before {
		want[id] = e
	}
	for _, e := range created {
		want[e.Id] = e
	}
	var all []*types.Entry
	step("list-paged", func() string {
		entries, pages := c.list(nil, listPage)
		checkWalk("ListEntries", pages, listPage, true)
		got := idSet("ListEntries", entries)
		sameIDs("ListEntries", got, want)
		expectedPages := (len(want)+int(listPage)-1)/int(listPage) + 1
		check(len(pages) == expectedPages, "ListEntries took %d pages for %d entries, expected %d (full pages of %d, then one empty page); pages: %s", len(pages), len(want), expectedPages, listPage, describePages(pages))
		for _, e := range created {
			check(sameEntry(got[e.Id], e), "ListEntries' entry %s differs from BatchCreateEntry's echo:\n got %v\nwant %v", e.Id, got[e.Id], e)
		}
		all = entries
		return fmt.Sprintf("%d entries (%d before, %d created, the probe), no duplicates, each as created; pages: %s", len(entries), len(before), *n, describePages(pages))
	})

	step("list-unpaged", func() string {
		ctx, cancel := c.ctx()
		defer cancel()
		resp := must(c.entries.ListEntries(ctx, &entryv1.ListEntriesRequest{}))
		check(resp.NextPageToken == "", "ListEntries with page_size 0 answered a next_page_token %q; SPIRE answers everything at once", resp.NextPageToken)
		sameIDs("ListEntries with page_size 0", idSet("ListEntries with page_size 0", resp.Entries), want)
		return fmt.Sprintf("page_size 0: all %d entries in one response, no token", len(resp.Entries))
	})

	step("count", func() string {
		counted := c.count(nil)
		check(counted == len(want), "CountEntries says %d, expected %d", counted, len(want))
		return fmt.Sprintf("CountEntries %d", counted)
	})

	// A filter's answer, walked in small pages and in the controller manager's, against what it must select from the
	// full list; CountEntries with the same filter agrees. ours is how many of the client's entries it must select.
	filterCheck := func(what string, filter *entryv1.ListEntriesRequest_Filter, countFilter *entryv1.CountEntriesRequest_Filter, selects func(*types.Entry) bool, ours int) string {
		expected := map[string]*types.Entry{}
		mine := 0
		for _, e := range all {
			if selects(e) {
				expected[e.Id] = e
				if strings.HasPrefix(e.SpiffeId.GetPath(), *prefix+"/") {
					mine++
				}
			}
		}
		check(mine == ours, "%s: the client's own reckoning is off: %d of its entries selected, expected %d", what, mine, ours)
		var shapes []string
		for _, size := range []int32{filterPage, listPage} {
			entries, pages := c.list(filter, size)
			checkWalk(fmt.Sprintf("%s, page_size %d", what, size), pages, size, false)
			sameIDs(fmt.Sprintf("%s, page_size %d", what, size), idSet(what, entries), expected)
			shapes = append(shapes, fmt.Sprintf("page_size %d: %s", size, describePages(pages)))
		}
		counted := c.count(countFilter)
		check(counted == len(expected), "%s: CountEntries says %d, ListEntries listed %d", what, counted, len(expected))
		return fmt.Sprintf("%s: %d entries (%s)", what, len(expected), strings.Join(shapes, "; "))
	}

	step("filter-parent-id", func() string {
		var details []string
		for k, p := range parents {
			ours := (*n + 2 - k) / 3
			if k == 0 {
				ours++ // the probe
			}
			details = append(details, filterCheck("by_parent_id "+idString(p),
				&entryv1.ListEntriesRequest_Filter{ByParentId: p}, &entryv1.CountEntriesRequest_Filter{ByParentId: p},
				func(e *types.Entry) bool { return idString(e.ParentId) == idString(p) }, ours))
		}
		return strings.Join(details, " | ")
	})

	step("filter-spiffe-id", func() string {
		w := workloads[7]
		return filterCheck("by_spiffe_id "+idString(w.SpiffeId),
			&entryv1.ListEntriesRequest_Filter{BySpiffeId: w.SpiffeId}, &entryv1.CountEntriesRequest_Filter{BySpiffeId: w.SpiffeId},
			func(e *types.Entry) bool { return idString(e.SpiffeId) == idString(w.SpiffeId) }, 1)
	})

	step("filter-selectors", func() string {
		perNamespace := (*n + 3) / 5 // entries in ns-1
		cases := []struct {
			match     types.SelectorMatch_MatchBehavior
			selectors []string
			ours      int
		}{
			{types.SelectorMatch_MATCH_EXACT, selectorStrings(workloads[6].Selectors), 1},
			{types.SelectorMatch_MATCH_EXACT, []string{"k8s:ns:ns-1"}, 0},
			{types.SelectorMatch_MATCH_SUBSET, []string{"k8s:ns:ns-1", "k8s:pod-uid:uid-0006", "k8s:pod-uid:uid-0007", "k8s:pod-uid:uid-0011"}, 2},
			{types.SelectorMatch_MATCH_SUPERSET, []string{"k8s:ns:ns-1"}, perNamespace},
			{types.SelectorMatch_MATCH_SUPERSET, []string{"k8s:ns:ns-1", "k8s:pod-uid:uid-0002"}, 0},
			{types.SelectorMatch_MATCH_ANY, []string{"k8s:pod-uid:uid-0001", "k8s:pod-uid:uid-0002", "unix:uid:1000"}, 3},
		}
		var details []string
		for _, tc := range cases {
			sm := &types.SelectorMatch{Selectors: toSelectors(tc.selectors...), Match: tc.match}
			details = append(details, filterCheck(fmt.Sprintf("by_selectors %s %v", tc.match, tc.selectors),
				&entryv1.ListEntriesRequest_Filter{BySelectors: sm}, &entryv1.CountEntriesRequest_Filter{BySelectors: sm},
				func(e *types.Entry) bool { return matches(selectorStrings(e.Selectors), tc.selectors, tc.match) }, tc.ours))
		}
		ctx, cancel := c.ctx()
		defer cancel()
		_, err := c.entries.ListEntries(ctx, &entryv1.ListEntriesRequest{PageSize: listPage, Filter: &entryv1.ListEntriesRequest_Filter{BySelectors: &types.SelectorMatch{}}})
		wantRPCError("ListEntries by an empty selector set", err, codes.InvalidArgument, "malformed selectors filter: empty selector set")
		return strings.Join(details, " | ") + " | an empty selector set: InvalidArgument"
	})

	// A duplicate: same SPIFFE ID, parent and selectors, other fields different. The existing entry comes back.
	step("duplicate-create", func() string {
		dup := proto.Clone(workloads[3]).(*types.Entry)
		dup.Hint = "a duplicate"
		dup.X509SvidTtl = 7200
		r := c.create([]*types.Entry{dup})[0]
		wantStatus("BatchCreateEntry of a duplicate", r.Status, codes.AlreadyExists, "similar entry already exists")
		check(r.Entry != nil, "ALREADY_EXISTS came without the existing entry")
		check(sameEntry(r.Entry, created[3]), "ALREADY_EXISTS came with an entry that is not the existing one:\n got %v\nwant %v", r.Entry, created[3])
		return fmt.Sprintf("ALREADY_EXISTS %q with the existing entry %s, unchanged", r.Status.Message, r.Entry.Id)
	})

	// One batch of good and bad entries: a result for each, in order; the bad ones change nothing.
	customID := "spire-api-client.custom-id_1"
	var customEntry *types.Entry
	step("mixed-batch", func() string {
		valid := &types.Entry{Id: customID, SpiffeId: c.id(*prefix + "/custom-id"), ParentId: parent, Selectors: toSelectors("unix:uid:2000")}
		type batchCase struct {
			entry   *types.Entry
			code    codes.Code
			message string
		}
		noBundle := batchCase{&types.Entry{SpiffeId: c.id(*prefix + "/no-bundle"), ParentId: parent, Selectors: toSelectors("unix:uid:2006"), FederatesWith: []string{"no-bundle.example"}},
			codes.Internal, "failed to create entry: unable to find federated bundle \"spiffe://no-bundle.example\""}
		if *acceptsUnknownFederation {
			noBundle.code, noBundle.message = codes.OK, "OK"
		}
		cases := []batchCase{
			{valid, codes.OK, "OK"},
			{&types.Entry{SpiffeId: c.id("/spire/reserved"), ParentId: parent, Selectors: toSelectors("unix:uid:2001")}, codes.InvalidArgument,
				fmt.Sprintf("failed to convert entry: invalid spiffe ID: \"spiffe://%s/spire/reserved\" is not a workload in trust domain %q; path is in the reserved namespace", c.td, c.td)},
			{&types.Entry{SpiffeId: c.id(*prefix + "/no-selectors"), ParentId: parent}, codes.InvalidArgument, "failed to convert entry: selector list is empty"},
			{&types.Entry{SpiffeId: c.id(*prefix + "/bad-selector"), ParentId: parent, Selectors: []*types.Selector{{Type: "unix:uid", Value: "1"}}}, codes.InvalidArgument, "failed to convert entry: selector type contains ':'"},
			{&types.Entry{SpiffeId: c.id(*prefix + "/elsewhere"), ParentId: &types.SPIFFEID{TrustDomain: "elsewhere.example", Path: "/node"}, Selectors: toSelectors("unix:uid:2002")}, codes.InvalidArgument,
				fmt.Sprintf("failed to convert entry: invalid parent ID: \"spiffe://elsewhere.example/node\" is not a member of trust domain %q", c.td)},
			{&types.Entry{SpiffeId: c.id(*prefix + "/long-hint"), ParentId: parent, Selectors: toSelectors("unix:uid:2003"), Hint: strings.Repeat("h", 1025)}, codes.InvalidArgument, "failed to convert entry: hint is too long, max length is 1024 characters"},
			{&types.Entry{SpiffeId: c.id(*prefix + "/bad-dns"), ParentId: parent, Selectors: toSelectors("unix:uid:2005"), DnsNames: []string{"ends-with-dot.example."}}, codes.InvalidArgument, "failed to convert entry: invalid DNS name: domain ends with dot"},
			noBundle,
			{&types.Entry{Id: customID, SpiffeId: c.id(*prefix + "/custom-id-again"), ParentId: parent, Selectors: toSelectors("unix:uid:2004")}, codes.AlreadyExists, "failed to create entry: …"},
			{proto.Clone(workloads[4]).(*types.Entry), codes.AlreadyExists, "similar entry already exists"},
		}
		entries := make([]*types.Entry, 0, len(cases))
		for _, tc := range cases {
			entries = append(entries, tc.entry)
		}
		results := c.create(entries)
		var got []string
		for i, tc := range cases {
			wantStatus(fmt.Sprintf("mixed batch result %d (%s)", i, idString(tc.entry.SpiffeId)), results[i].Status, tc.code, tc.message)
			got = append(got, fmt.Sprintf("%s %q", codes.Code(results[i].Status.Code), results[i].Status.Message))
		}
		customEntry = results[0].Entry
		check(customEntry.GetId() == customID, "the custom ID came back as %q", customEntry.GetId())
		check(results[len(cases)-1].Entry.GetId() == created[4].Id, "the duplicate's result names %q, not the existing entry %s", results[len(cases)-1].Entry.GetId(), created[4].Id)
		for i := 1; i < len(cases)-1; i++ {
			if cases[i].code == codes.OK {
				// Accepted (the no-bundle entry on a server that allows it): deleted again, so the counts below hold.
				check(results[i].Entry != nil, "mixed batch result %d succeeded without its entry", i)
				wantStatus("deleting the accepted no-bundle entry", c.delete([]string{results[i].Entry.GetId()})[0].Status, codes.OK, "OK")
				continue
			}
			check(results[i].Entry == nil, "mixed batch result %d failed yet came with an entry: %v", i, results[i].Entry)
		}
		counted := c.count(nil)
		check(counted == len(want)+1, "CountEntries says %d after the mixed batch, expected %d (only the custom-ID entry added)", counted, len(want)+1)
		want[customEntry.Id] = customEntry
		return strings.Join(got, "; ")
	})

	// The controller manager's update: the whole entry as it declares it (no id-less fields such as expires_at or
	// revision_number), no input mask. A full replace: what it leaves out is cleared.
	step("update-probe-no-mask", func() string {
		declared := &types.Entry{
			Id: probeEntry.Id, SpiffeId: probe.SpiffeId, ParentId: probe.ParentId, Selectors: probe.Selectors,
			X509SvidTtl: 1800, JwtSvidTtl: probe.JwtSvidTtl, FederatesWith: []string{feds[0]}, Admin: true,
			DnsNames: []string{"probe-updated.example.org"}, Downstream: false, Hint: "updated", StoreSvid: true,
		}
		r := c.update([]*types.Entry{declared})[0]
		wantStatus("BatchUpdateEntry of the probe", r.Status, codes.OK, "OK")
		checkEntry("BatchUpdateEntry's echo of the probe (expires_at left out, so cleared)", declared, r.Entry)
		check(r.Entry.RevisionNumber == probeEntry.RevisionNumber+1, "revision_number %d after an update, expected %d", r.Entry.RevisionNumber, probeEntry.RevisionNumber+1)
		check(r.Entry.CreatedAt == probeEntry.CreatedAt, "created_at changed on update: %d, was %d", r.Entry.CreatedAt, probeEntry.CreatedAt)
		check(r.Entry.Id == probeEntry.Id, "the update answered entry %q, not %s", r.Entry.Id, probeEntry.Id)
		got := must(c.get(probeEntry.Id))
		check(sameEntry(got, r.Entry), "GetEntry after the update differs from the update's echo:\n got %v\nwant %v", got, r.Entry)
		again := c.update([]*types.Entry{declared})[0]
		wantStatus("the same update again", again.Status, codes.OK, "OK")
		check(again.Entry.RevisionNumber == r.Entry.RevisionNumber+1, "revision_number %d after an unchanged update, expected %d (every update bumps it)", again.Entry.RevisionNumber, r.Entry.RevisionNumber+1)
		want[probeEntry.Id] = again.Entry
		return fmt.Sprintf("hint, dns_names, x509_svid_ttl, federates_with and downstream replaced, expires_at cleared, revision %d → %d → %d (an unchanged update bumps it too)",
			probeEntry.RevisionNumber, r.Entry.RevisionNumber, again.Entry.RevisionNumber)
	})

	step("batch-update-no-mask", func() string {
		calls := 0
		batches(*n, updateBatch, func(start, end int) {
			calls++
			declared := make([]*types.Entry, 0, end-start+1)
			for i := start; i < end; i++ {
				e := proto.Clone(workloads[i]).(*types.Entry)
				e.Id = created[i].Id
				e.X509SvidTtl = 900
				e.Hint = fmt.Sprintf("updated %d", i)
				declared = append(declared, e)
			}
			last := end == *n
			if last {
				// An unknown ID among them: its own NotFound, the others unaffected.
				declared = append(declared, &types.Entry{Id: "spire-api-client-no-such-entry", SpiffeId: c.id(*prefix + "/nobody"), ParentId: parent, Selectors: toSelectors("unix:uid:2999")})
			}
			for j, r := range c.update(declared) {
				what := fmt.Sprintf("BatchUpdateEntry result %d of batch %d", j, calls)
				if last && j == len(declared)-1 {
					wantStatus(what+" (an unknown ID)", r.Status, codes.NotFound, "failed to update entry")
					check(r.Entry == nil, "%s: NotFound came with an entry", what)
					continue
				}
				wantStatus(what, r.Status, codes.OK, "OK")
				checkEntry(what+" (results in request order)", declared[j], r.Entry)
				check(r.Entry.Id == declared[j].Id && r.Entry.RevisionNumber == 1, "%s: entry %s revision %d, expected %s revision 1", what, r.Entry.Id, r.Entry.RevisionNumber, declared[j].Id)
				created[start+j] = r.Entry
				want[r.Entry.Id] = r.Entry
			}
		})
		entries, pages := c.list(nil, listPage)
		checkWalk("ListEntries after the updates", pages, listPage, true)
		got := idSet("ListEntries after the updates", entries)
		sameIDs("ListEntries after the updates", got, want)
		for id, e := range want {
			check(sameEntry(got[id], e), "ListEntries after the updates: entry %s is not as updated:\n got %v\nwant %v", id, got[id], e)
		}
		return fmt.Sprintf("%d entries in %d calls of at most %d, each OK, revision 1, as listed after; an unknown ID: NotFound", *n, calls, updateBatch)
	})

	step("batch-delete", func() string {
		ids := []string{probeEntry.Id, customEntry.Id}
		for _, e := range created {
			ids = append(ids, e.Id)
		}
		calls := 0
		batches(len(ids), deleteBatch, func(start, end int) {
			calls++
			batch := slices.Clone(ids[start:end])
			last := end == len(ids)
			if last {
				batch = append(batch, "spire-api-client-no-such-entry", "")
			}
			for j, r := range c.delete(batch) {
				what := fmt.Sprintf("BatchDeleteEntry result %d of batch %d", j, calls)
				check(r.Id == batch[j], "%s is for %q, expected %q (results in request order)", what, r.Id, batch[j])
				switch {
				case last && j == len(batch)-2:
					wantStatus(what+" (an unknown ID)", r.Status, codes.NotFound, "entry not found")
				case last && j == len(batch)-1:
					wantStatus(what+" (an empty ID)", r.Status, codes.InvalidArgument, "missing entry ID")
				default:
					wantStatus(what, r.Status, codes.OK, "OK")
				}
			}
		})
		return fmt.Sprintf("%d entries in %d calls of at most %d, each OK with its ID, in order; an unknown ID: NotFound; an empty one: InvalidArgument", len(ids), calls, deleteBatch)
	})

	step("after-delete", func() string {
		entries, pages := c.list(nil, listPage)
		checkWalk("ListEntries after the deletes", pages, listPage, true)
		got := idSet("ListEntries after the deletes", entries)
		sameIDs("ListEntries after the deletes", got, before)
		for id, e := range before {
			check(sameEntry(got[id], e), "entry %s, there before the client, changed:\n got %v\nwant %v", id, got[id], e)
		}
		counted := c.count(nil)
		check(counted == len(before), "CountEntries says %d after the deletes, expected %d", counted, len(before))
		_, err := c.get(probeEntry.Id)
		wantRPCError("GetEntry of the deleted probe", err, codes.NotFound, "entry not found")
		_, err = c.get("")
		wantRPCError("GetEntry without an ID", err, codes.InvalidArgument, "missing ID")
		return fmt.Sprintf("only the %d entries there before remain, unchanged; GetEntry of a deleted entry: NotFound", len(before))
	})

	step("federated-bundles-delete", func() string {
		if !*setBundles {
			return "left to the caller: " + strings.Join(feds, ", ")
		}
		ctx, cancel := c.ctx()
		defer cancel()
		resp := must(c.bundles.BatchDeleteFederatedBundle(ctx, &bundlev1.BatchDeleteFederatedBundleRequest{TrustDomains: feds}))
		check(len(resp.Results) == len(feds), "BatchDeleteFederatedBundle: %d results for %d trust domains", len(resp.Results), len(feds))
		for i, r := range resp.Results {
			wantStatus("BatchDeleteFederatedBundle "+feds[i], r.Status, codes.OK, "")
			check(r.TrustDomain == feds[i], "BatchDeleteFederatedBundle result %d is for %q, expected %q", i, r.TrustDomain, feds[i])
		}
		return "bundles deleted for " + strings.Join(feds, ", ")
	})

	emit("done", true, "all steps passed in "+strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64)+" s")
}
