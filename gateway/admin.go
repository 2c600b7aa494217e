package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
)

func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(g.Snapshot())
	})
	g.statusRoutes(mux) // status page at /, /metrics (status.go)
	mux.HandleFunc("GET /text", func(w http.ResponseWriter, r *http.Request) {
		s := g.Snapshot()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "isthmus gateway %s — link up: %v, queued %d, unacked %d\n\n", s.Name, s.Link.Up, s.Link.Waiting, s.Link.Unacked)
		WriteTable(w, []string{"out (to peer)", "in (from peer)"}, []Direction{s.Out, s.In})
		fmt.Fprintln(w, "\nJSON: /stats")
	})
	return mux
}
