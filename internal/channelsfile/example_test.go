package channelsfile_test

import (
	"fmt"

	"github.com/instant-go/instant/internal/channelsfile"
)

func ExampleParse() {
	r, err := channelsfile.Parse("channels.yaml", []byte(`channels:
  - name: public
    level: public
  - name: $billing
    level: staff
    publishers: [billing]
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Len(), "channels")
	fmt.Println(r.CheckPublish("billing", []string{"$billing", "public"}))
	fmt.Println(r.CheckPublish("shop", []string{"public", "$billing"}))

	_, err = channelsfile.Parse("channels.yaml", []byte(`channels:
  - name: $billing
    levle: staff
`))
	fmt.Println(err)
	// Output:
	// 2 channels
	// <nil>
	// publisher_denied: producer "shop" may not publish to channel "$billing"
	// channels.yaml:3: entry 0 ($billing): unknown key "levle" (want one of name, level, active, groups, publishers) (did you mean "level"?)
}
