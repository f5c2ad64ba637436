-- lasync.json: the JSON codec of the C core (bindings/codec/json.c):
-- encode, decode, null, array, object. Also lasync.json.
return require("lasync.core").json
