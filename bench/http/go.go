// httphello / httpjson / httpidle server: Go's net/http, keep-alive (the
// default), run with GOMAXPROCS=1. GET / answers "Hello, world\n"; GET
// /json a small struct encoded per request with encoding/json.
// usage: GOMAXPROCS=1 http_go PORT
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"sync/atomic"
)

type message struct {
	Message string `json:"message"`
	N       int64  `json:"n"`
}

func main() {
	port := "9000"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	hello := []byte("Hello, world\n")
	var count int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(message{"Hello, world", atomic.AddInt64(&count, 1)})
	})
	if err := http.ListenAndServe("127.0.0.1:"+port, mux); err != nil {
		panic(err)
	}
}
