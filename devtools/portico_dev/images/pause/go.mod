module portico.dev/devcluster/images/pause

go 1.24
