// Where the storefront finds the API and the live-stock stream. Empty values: the API on the page's
// own origin (the local stack serves the storefront itself) and the stream on the next port. A
// storefront served from elsewhere (S3/CloudFront) gets this file written with the stack's ApiUrl
// and StreamUrl outputs; the API answers that origin when the template's AllowedOrigin names it.
window.GOODSDROP_CONFIG = { api: "", stream: "" };
