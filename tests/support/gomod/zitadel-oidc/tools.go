//go:build tools

package tools

import _ "github.com/zitadel/oidc/v3/example/server"
