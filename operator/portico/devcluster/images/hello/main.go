// Command hello is the smallest real web server for the real-node tests: it
// answers every path with a line naming its pod (HELLO_MESSAGE, POD_NAME) and
// /healthz with "ok", so a test can tell which pod served a request.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := os.Getenv("HELLO_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	message := os.Getenv("HELLO_MESSAGE")
	pod := os.Getenv("POD_NAME")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s: %s %s%s\n", pod, message, r.Host, r.URL.Path)
	})
	server := &http.Server{Addr: addr, Handler: mux}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		server.Close()
	}()
	if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
