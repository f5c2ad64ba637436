// workers1 / workers2 server: Go's net/http with GOMAXPROCS=N (set by
// workers/run.sh); GET / does the work of workers/lasync.lua (ITERS steps
// of the minimal standard LCG from a request counter) and answers the
// result as text.
// usage: GOMAXPROCS=N workers_go PORT [ITERS]
package main

import (
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

func main() {
	port := os.Args[1]
	iters := int64(16000)
	if len(os.Args) > 2 {
		iters, _ = strconv.ParseInt(os.Args[2], 10, 64)
	}
	var count int64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		x := 1 + atomic.AddInt64(&count, 1)%1000
		for i := int64(0); i < iters; i++ {
			x = (x * 16807) % 2147483647
		}
		body := strconv.FormatInt(x, 10) + "\n"
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write([]byte(body))
	})
	if err := http.ListenAndServe("127.0.0.1:"+port, nil); err != nil {
		panic(err)
	}
}
