# Stands in for alphagov/signon lib/kubernetes/client.rb, whose `apply_secret(name, data)`
# server-side-applies an Opaque Secret `name` with `data` (field manager "signon") through
# kubeclient. Here each apply is appended as a JSON line to $HARNESS_K8S_SECRETS (a file, so an
# apply made inside a database transaction that rolls back still shows); HARNESS_K8S_FAIL=1
# makes it raise as kubeclient does when the API server says no.
require "json"

module Kubeclient
  class HttpError < StandardError; end
end

module Kubernetes
  class Client
    def apply_secret(name, data)
      if ENV["HARNESS_K8S_FAIL"] == "1"
        raise Kubeclient::HttpError, "secrets \"#{name}\" is forbidden: the harness says no"
      end

      File.open(ENV.fetch("HARNESS_K8S_SECRETS"), "a") do |file|
        file.puts(JSON.generate(name: name, type: "Opaque", data: data))
      end
    end
  end
end
