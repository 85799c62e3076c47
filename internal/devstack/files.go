package devstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/instant-go/instant/internal/users"
)

// DemoPassword is the password of the demo users written to users.yaml.
const DemoPassword = "instant-demo"

const channelsYAML = `# Channels of the development stack; edit me, the bridge and the token
# service reload this file when it changes.
channels:
  - name: public
    level: public
  - name: $users
    level: users
  - name: $group1
    level: groups
    groups: [group1]
  - name: $staff
    level: staff
  - name: $billing
    level: staff
    publishers: [billing]
`

// writeFiles writes the channels and users files into dir, unless they
// exist: a developer's edits are kept.
func writeFiles(dir string) (channelsFile, usersFile string, err error) {
	channelsFile = filepath.Join(dir, "channels.yaml")
	if _, err := os.Stat(channelsFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(channelsFile, []byte(channelsYAML), 0o600); err != nil {
			return "", "", err
		}
	}
	usersFile = filepath.Join(dir, "users.yaml")
	if _, err := os.Stat(usersFile); errors.Is(err, os.ErrNotExist) {
		hash, err := users.HashPassword([]byte(DemoPassword), 10)
		if err != nil {
			return "", "", err
		}
		body := fmt.Sprintf(`# Demo users of the development stack; password %q for both.
# Make a hash with: go run ./cmd/tokensvc hash-password
users:
  - username: alice
    password_hash: %q
    groups: [group1]
  - username: admin
    password_hash: %q
    staff: true
    superuser: true
`, DemoPassword, hash, hash)
		if err := os.WriteFile(usersFile, []byte(body), 0o600); err != nil {
			return "", "", err
		}
	}
	return channelsFile, usersFile, nil
}
