// Package deploytest checks the deployment files that Instant ships
// (docker-compose.yml, deployments/*.Dockerfile, the Centrifugo
// configuration and the example channels and users files) against the
// programs they deploy, without a Docker engine: its tests parse the files
// and run the programs in-process as the compose file configures them.
package deploytest
