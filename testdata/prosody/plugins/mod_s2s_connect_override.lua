-- mod_s2s_connect_override: send outgoing S2S for chosen domains to a fixed
-- host:port instead of resolving SRV/A records.
--
-- Prosody has no option for this. isthmus tests need it to point a local
-- Prosody at an isthmus gateway (or at another Prosody) on loopback:
--
--   modules_enabled = { ...; "s2s_connect_override" }
--   s2s_connect_overrides = { ["b.test"] = { "127.0.0.1", 35269 } }
--
-- It wraps net.resolvers.service.new (signature: hostname, service, conn_type,
-- extra). mod_s2s calls service.new(to_host, "xmpp-server", "tcp", extra) and,
-- when it has a TLS context, service.new(to_host, "xmpps-server", ...) for
-- direct TLS. For an overridden domain the first becomes a basic resolver for
-- the fixed address and the second an empty manual resolver (no direct TLS).

module:set_global();

local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";

local overrides = module:get_option("s2s_connect_overrides", {});

for domain, target in pairs(overrides) do
	if type(target) ~= "table" or type(target[1]) ~= "string" or tonumber(target[2]) == nil then
		module:log("error", "s2s_connect_overrides[%q] must be { host, port }", tostring(domain));
	else
		module:log("info", "outgoing S2S for %s goes to %s:%d", domain, target[1], tonumber(target[2]));
	end
end

-- Keep the real constructor across reloads: only wrap it once.
local original = service._isthmus_original_new or service.new;
service._isthmus_original_new = original;

service.new = function (hostname, srv, conn_type, extra)
	local target = overrides[hostname];
	if type(target) == "table" and type(target[1]) == "string" and tonumber(target[2]) then
		if srv == "xmpp-server" then
			module:log("debug", "S2S to %s: connecting to override %s:%d", hostname, target[1], tonumber(target[2]));
			return basic.new(target[1], tonumber(target[2]), conn_type, extra);
		elseif srv == "xmpps-server" then
			return manual.new({}, conn_type, extra);
		end
	end
	return original(hostname, srv, conn_type, extra);
end

-- The test harness waits for this line: by then every module (mod_posix's
-- SIGTERM handler included) is loaded and the ports are open.
module:hook_global("server-started", function ()
	module:log("info", "isthmus: server started");
end);

function module.unload()
	service.new = original;
	service._isthmus_original_new = nil;
end
