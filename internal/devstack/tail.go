package devstack

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/centrifugal/centrifuge-go"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/tokens"
)

// tail subscribes to every channel as a superuser and prints what arrives.
// The client is closed with the returned function.
func tail(wsURL, hmacKey, channelsFile string, out io.Writer) (func(), error) {
	data, err := os.ReadFile(channelsFile)
	if err != nil {
		return nil, err
	}
	reg, err := channelsfile.Parse(channelsFile, data)
	if err != nil {
		return nil, err
	}
	signer, err := tokens.NewHMAC([]byte(hmacKey))
	if err != nil {
		return nil, err
	}
	const who = "devstack-tail"
	conn, _, err := signer.Connection(who, nil, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	client := centrifuge.NewJsonClient(wsURL, centrifuge.Config{Token: conn})
	for _, ch := range reg.Channels() {
		if !ch.Active {
			continue
		}
		tok, _, err := signer.Subscription(who, ch.Name, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		sub, err := client.NewSubscription(ch.Name, centrifuge.SubscriptionConfig{Token: tok})
		if err != nil {
			return nil, err
		}
		name := ch.Name
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			fmt.Fprintf(out, "tail: [%s] offset %d: %s\n", name, e.Offset, e.Data)
		})
		if err := sub.Subscribe(); err != nil {
			return nil, err
		}
	}
	if err := client.Connect(); err != nil {
		client.Close()
		return nil, err
	}
	return client.Close, nil
}
