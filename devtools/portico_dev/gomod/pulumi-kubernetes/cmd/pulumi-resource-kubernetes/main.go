// Command pulumi-resource-kubernetes serves the pinned Kubernetes provider.
//
// Upstream's main package embeds files that its release build generates
// (schema-embed.json, terraform-mapping-embed.json), so it cannot be built
// from the module alone; portico's build writes them beside this file from
// the module's schema.json and terraform-mapping.json, then builds this.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
