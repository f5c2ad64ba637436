// httpclient / httpsclient client: Go net/http, one http.Client whose
// Transport keeps CONC idle connections per host (MaxIdleConnsPerHost) and
// opens no more than CONC (MaxConnsPerHost: without it a Get that finds no
// idle connection dials a new one, ~190 a run, ~380 TLS handshakes), shared
// by CONC goroutines, each looping Get + io.ReadAll + Close until N
// requests are done, after WARMUP requests that are not counted (they open
// the connections: the TLS handshakes are CONC, not N). https verifies the
// server against CAFILE (RootCAs). A request counts as an error unless it
// answers 200 with "Hello, world\n". Run with GOMAXPROCS=1. Prints one line
// run.sh turns into a RESULT: requests, seconds, client CPU seconds
// (getrusage), max RSS, errors, p50/p99 latency of one request.
// usage: client_go URL N CONC WARMUP [CAFILE]
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const body = "Hello, world\n"

var said int32

func batch(c *http.Client, url string, n, conc int, lat []time.Duration) int64 {
	var next, errors int64 = -1, 0
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(n) {
					return
				}
				t := time.Now()
				ok := false
				r, err := c.Get(url)
				if err == nil {
					b, err2 := io.ReadAll(r.Body)
					r.Body.Close()
					ok, err = err2 == nil && r.StatusCode == 200 && string(b) == body, err2
				}
				if !ok {
					atomic.AddInt64(&errors, 1)
					if err != nil && atomic.AddInt32(&said, 1) == 1 {
						fmt.Fprintln(os.Stderr, "# first error:", err)
					}
				}
				if lat != nil {
					lat[i] = time.Since(t)
				}
			}
		}()
	}
	wg.Wait()
	return errors
}

func cpu() (float64, int64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	return s, ru.Maxrss
}

func main() {
	url := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	conc, _ := strconv.Atoi(os.Args[3])
	warm, _ := strconv.Atoi(os.Args[4])
	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc,
		IdleConnTimeout: 300 * time.Second}
	if len(os.Args) > 5 {
		pem, err := os.ReadFile(os.Args[5])
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c := &http.Client{Transport: tr}
	batch(c, url, warm, conc, nil)
	lat := make([]time.Duration, n)
	c0, _ := cpu()
	t0 := time.Now()
	errors := batch(c, url, n, conc, lat)
	secs := time.Since(t0).Seconds()
	c1, rss := cpu()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pick := func(q float64) int64 {
		i := int(q * float64(n))
		if i > n-1 {
			i = n - 1
		}
		return lat[i].Microseconds()
	}
	fmt.Printf("requests=%d seconds=%.4f cpu_s=%.3f maxrss_kb=%d errors=%d p50_us=%d p99_us=%d\n",
		n, secs, c1-c0, rss, errors, pick(0.5), pick(0.99))
}
