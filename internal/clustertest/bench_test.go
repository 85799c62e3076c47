package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

// The capacity numbers of docs/scaling.md, measured on the machine that
// runs them (every server in this process or a child process):
//
//	go test -run '^$' -bench JetStreamWrite -benchtime 50000x ./internal/clustertest
//	go test -run '^$' -bench CentrifugoPublish -benchtime 100000x ./internal/clustertest
//	go test -run '^$' -bench CentrifugoFanout -benchtime 2000x ./internal/clustertest

// benchEnvelope is an envelope of the size the bridge typically carries.
var benchEnvelope = []byte(`{"channel":"$users","message":"a typical message of about one hundred bytes","id":"01KB3X6V0Q8W3ZC2K7B2J4Y9M5"}`)

// BenchmarkJetStreamWrite: envelopes stored per second in a work-queue
// stream like the bridge's (file storage), 1,000 publish acks pending, on a
// 3-server cluster, with 1 and 3 replicas.
func BenchmarkJetStreamWrite(b *testing.B) {
	c := testenv.StartNATSCluster(b, 3)
	nc, err := nats.Connect(c.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1000))
	if err != nil {
		b.Fatal(err)
	}
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", replicas), func(b *testing.B) {
			subject := fmt.Sprintf("bench.r%d", replicas)
			err := stack.Eventually(20*time.Second, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{
					Name: fmt.Sprintf("BENCH_R%d", replicas), Subjects: []string{subject},
					Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: replicas,
				})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(benchEnvelope)))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := js.PublishAsync(subject, benchEnvelope); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publish acks missing after a minute")
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "stored/s")
		})
	}
}

// BenchmarkCentrifugoPublish: publishes per second one Centrifugo node
// applies through the bridge's sender (batches of 500 applied in order,
// idempotency keys, history on), from 1, 4 and 16 concurrent senders (as a
// bridge with that many channels in flight), with the memory and the Redis
// engine. No subscriber: the cost of taking publications in.
func BenchmarkCentrifugoPublish(b *testing.B) {
	for _, engine := range []string{"memory", "redis"} {
		b.Run(engine, func(b *testing.B) {
			redisPID := -1
			cf := testenv.StartCentrifugo(b, func(o *stack.CentrifugoOptions) {
				if engine == "redis" {
					r := testenv.StartRedis(b)
					o.RedisAddress, redisPID = r.URL(), r.PID()
				}
			})
			snd := centrifugo.NewHTTPSender(cf.APIURL(), cf.APIKey, &http.Client{Timeout: 30 * time.Second})
			for _, senders := range []int{1, 4, 16} {
				b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
					start, cpuCf, cpuRedis := time.Now(), stack.ProcCPU(cf.PID()), stack.ProcCPU(redisPID)
					publishConcurrently(b, snd, senders, fmt.Sprint(engine, senders, b.N))
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
					b.ReportMetric(float64((stack.ProcCPU(cf.PID())-cpuCf).Microseconds())/float64(b.N), "centrifugo-cpu-µs/op")
					b.ReportMetric(float64((stack.ProcCPU(redisPID)-cpuRedis).Microseconds())/float64(b.N), "redis-cpu-µs/op")
				})
			}
		})
	}
}

// publishConcurrently sends b.N publishes in batches of 500 from senders
// goroutines, each to 25 channels of its own.
func publishConcurrently(b *testing.B, snd centrifugo.Sender, senders int, keyPrefix string) {
	const batch = 500
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmds := make([]centrifugo.Command, 0, batch)
			for {
				n := next.Add(batch) - batch
				if n >= int64(b.N) {
					return
				}
				cmds = cmds[:0]
				for i := n; i < min(n+batch, int64(b.N)); i++ {
					ch := fmt.Sprintf("bench-%d-%d", w, i%25)
					cmds = append(cmds, centrifugo.Command{Channel: ch, Data: benchEnvelope, IdempotencyKey: fmt.Sprint(keyPrefix, "-", i)})
				}
				if _, err := snd.Send(context.Background(), cmds); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkCentrifugoFanout: messages delivered per second by two
// Centrifugo nodes on Redis to 100 websocket subscribers (50 on each) of
// one channel, publishing in batches of 100 to the first node. The
// subscribers (centrifuge-go, JSON) run in this process on the same cores,
// so this is a lower bound of what the nodes can deliver; the CPU time of
// both nodes and Redis per delivery is the figure that carries over.
func BenchmarkCentrifugoFanout(b *testing.B) {
	redis := testenv.StartRedis(b)
	key, secret := testenv.Secret(b), testenv.Secret(b)
	node := func() *testenv.Centrifugo {
		return testenv.StartCentrifugo(b, func(o *stack.CentrifugoOptions) {
			o.RedisAddress, o.APIKey, o.HMACSecret = redis.URL(), key, secret
			o.Env = []string{"CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE=67108864"}
		})
	}
	a, nb := node(), node()
	const subscribers = 100
	var got atomic.Int64
	signer, err := tokens.NewHMAC([]byte(secret))
	if err != nil {
		b.Fatal(err)
	}
	for i := range subscribers {
		cf := a
		if i%2 == 1 {
			cf = nb
		}
		fanoutSubscriber(b, signer, cf.WebsocketURL(), &got)
	}
	snd := centrifugo.NewHTTPSender(a.APIURL(), key, &http.Client{Timeout: 30 * time.Second})
	cpu := func() time.Duration {
		return stack.ProcCPU(a.PID()) + stack.ProcCPU(nb.PID()) + stack.ProcCPU(redis.PID())
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpu()
	for n := 0; n < b.N; n += 100 {
		cmds := make([]centrifugo.Command, 0, 100)
		for i := n; i < min(n+100, b.N); i++ {
			cmds = append(cmds, centrifugo.Command{Channel: "$fan", Data: benchEnvelope})
		}
		if _, err := snd.Send(context.Background(), cmds); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * subscribers
	if err := stack.Eventually(2*time.Minute, func() error {
		if g := got.Load(); g < want {
			return fmt.Errorf("%d of %d delivered", g, want)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "delivered/s")
	b.ReportMetric(float64((cpu()-cpu0).Microseconds())/float64(want), "servers-cpu-µs/delivery")
}

// fanoutSubscriber connects a client subscribed to "$fan" that counts what
// it receives in got.
func fanoutSubscriber(b *testing.B, signer *tokens.Signer, wsURL string, got *atomic.Int64) {
	b.Helper()
	conn, _, err := signer.Connection("u", nil, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	sub, _, err := signer.Subscription("u", "$fan", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s := testenv.Connect(b, wsURL, conn)
	s.MustSubscribe("$fan", sub)
	stop, done := make(chan struct{}), make(chan struct{})
	b.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-s.Publications():
				got.Add(1)
			}
		}
	}()
}
