// The deployment test's stand-in for the sample server image (docker-compose.yml, app-b): the command line of
// hashicorp/http-echo (-listen=ADDR -text=TEXT), answering every request with TEXT and a newline. Its one addition
// is the proof the test reads: each request is logged as a JSON line with its method, path and headers, so the
// test can see which X-Forwarded-Client-Cert the app was given. Standard library only; built static by
// test/deploy/live/sample-images.ts into the test's cache, never committed as a binary.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

type requestLine struct {
	Event   string              `json:"event"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Remote  string              `json:"remote"`
	Headers map[string][]string `json:"headers"`
}

func main() {
	listen := flag.String("listen", ":5678", "address and port to listen on")
	text := flag.String("text", "", "text to answer every request with")
	flag.Parse()
	if *text == "" {
		fmt.Fprintln(os.Stderr, "http-echo: -text is required")
		os.Exit(2)
	}
	logger := json.NewEncoder(os.Stdout)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = logger.Encode(requestLine{"request", r.Method, r.URL.Path, r.RemoteAddr, r.Header})
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, *text)
	})
	log.Printf("http-echo listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, handler))
}
