package e2e

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

// BenchmarkKubernetesLoss measures, with the stand-in k3s on the host
// driver, how long `rdd set kubernetes.enabled=true` takes to Settled, and
// how long after its API server is SIGKILLed KubernetesReady turns False
// (target ≤ 1 s; the reference's probe needs up to 15 s), over 10 kills.
// Each kill is followed by k3s's restart and a new Ready. Bounded: one
// instance, 10 kills, each wait with a deadline.
func BenchmarkKubernetesLoss(b *testing.B) {
	const kills = 10
	for range b.N {
		in := newInstance(b).withK3s()
		in.must("start", "--timeout=3m")
		began := time.Now()
		in.must("set", "--timeout=5m", "kubernetes.enabled=true")
		b.ReportMetric(time.Since(began).Seconds(), "enable-to-settled-s")
		var lost []time.Duration
		for range kills {
			in.waitKube(3*time.Minute, "Ready", "")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			w, err := client.New(in.path(".rd2", "rdd.sock")).Watch(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			pid := in.standinAPIServerPID()
			killed := time.Now()
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				b.Fatal(err)
			}
			for {
				s, err := w.Next()
				if err != nil {
					b.Fatalf("watch: %v", err)
				}
				if c, _ := s.Condition(events.CondKubernetesReady); c.Status == events.StatusFalse {
					lost = append(lost, time.Since(killed))
					break
				}
			}
			w.Close()
			cancel()
		}
		slices.Sort(lost)
		b.ReportMetric(lost[len(lost)/2].Seconds()*1000, "loss-median-ms")
		b.ReportMetric(lost[len(lost)-1].Seconds()*1000, "loss-max-ms")
		in.must("stop", "--timeout=2m")
	}
}
