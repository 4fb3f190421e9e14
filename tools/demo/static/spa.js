// The demo single-page app: OAuth 2.1 authorization code flow with PKCE S256 (RFC 7636
// §4.2) as a public client, entirely in the browser (OAuth 2.0 for Browser-Based
// Applications, the "browser-based OAuth client" pattern). Plain JavaScript, no build
// step, nothing loaded from elsewhere. The PKCE verifier, state and nonce wait in
// sessionStorage (this tab only) during the redirect; tokens stay in memory.
'use strict';

(() => {
  const cfg = document.getElementById('spa').dataset;
  const $ = (id) => document.getElementById(id);
  let accessToken = null;
  let endpoints = null;

  function show(text, error) {
    const s = $('status');
    s.textContent = text;
    s.className = error ? 'notice error' : 'notice';
  }

  function b64url(bytes) {
    let s = '';
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function unb64url(text) {
    const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  function random() {
    const bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    return b64url(bytes);
  }

  async function json(response, what) {
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const e = body && body.error ? `${body.error} ${body.error_description || ''}` : response.status;
      throw new Error(`${what}: ${e}`);
    }
    return body;
  }

  // OpenID Connect Discovery 1.0 §4 (authz serves it to any origin).
  async function discover() {
    if (endpoints) return endpoints;
    const doc = await json(await fetch(`${cfg.issuer}/.well-known/openid-configuration`), 'discovery');
    if (doc.issuer !== cfg.issuer) throw new Error(`discovery names issuer ${doc.issuer}`);
    endpoints = doc;
    return doc;
  }

  async function signIn() {
    const d = await discover();
    const pending = { verifier: random(), state: random(), nonce: random() };
    const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(pending.verifier)));
    sessionStorage.setItem('demo-spa', JSON.stringify(pending));
    const url = new URL(d.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: cfg.clientId,
      redirect_uri: cfg.redirectUri,
      scope: cfg.scope,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    location.assign(url.toString());
  }

  // The WebCrypto parameters of a JWS algorithm (RFC 7518 §3).
  function algorithm(alg, jwk) {
    switch (alg) {
      case 'RS256': return [{ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, { name: 'RSASSA-PKCS1-v1_5' }];
      case 'PS256': return [{ name: 'RSA-PSS', hash: 'SHA-256' }, { name: 'RSA-PSS', saltLength: 32 }];
      case 'ES256': return [{ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }];
      case 'EdDSA': return [{ name: 'Ed25519' }, { name: 'Ed25519' }];
      default: throw new Error(`ID token algorithm ${alg} is not supported here (${jwk.kty})`);
    }
  }

  // OpenID Connect Core 1.0 §3.1.3.7: signature against the issuer's JWKS, iss, aud, azp,
  // exp and nonce.
  async function verifyIdToken(token, nonce) {
    const parts = token.split('.');
    if (parts.length !== 3) throw new Error('the ID token is no JWS');
    const header = JSON.parse(new TextDecoder().decode(unb64url(parts[0])));
    const claims = JSON.parse(new TextDecoder().decode(unb64url(parts[1])));
    const d = await discover();
    const jwks = await json(await fetch(d.jwks_uri), 'jwks');
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) throw new Error(`no published key ${header.kid}`);
    const [importAlg, verifyAlg] = algorithm(header.alg, jwk);
    const key = await crypto.subtle.importKey('jwk', jwk, importAlg, false, ['verify']);
    const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
    if (!await crypto.subtle.verify(verifyAlg, key, unb64url(parts[2]), signed)) {
      throw new Error('the ID token signature does not verify');
    }
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    const now = Date.now() / 1000;
    if (claims.iss !== cfg.issuer) throw new Error(`ID token iss ${claims.iss}`);
    if (!aud.includes(cfg.clientId)) throw new Error('ID token is not for this client');
    if (aud.length > 1 && claims.azp !== cfg.clientId) throw new Error('ID token azp');
    if (!(claims.exp > now - 60)) throw new Error('ID token expired');
    if (claims.nonce !== nonce) throw new Error('ID token nonce does not match');
    return claims;
  }

  async function userinfo() {
    const d = await discover();
    const claims = await json(await fetch(d.userinfo_endpoint, {
      headers: { Authorization: `Bearer ${accessToken}` },
    }), 'userinfo');
    $('claims').textContent = JSON.stringify(claims, null, 2);
    $('who').textContent = claims.name || claims.sub;
    return claims;
  }

  // The authorization response (RFC 6749 §4.1.2), then the code exchange (§4.1.3) with
  // the PKCE verifier, from the page.
  async function callback(params) {
    const pending = JSON.parse(sessionStorage.getItem('demo-spa') || 'null');
    sessionStorage.removeItem('demo-spa');
    // The code leaves the address bar and the history at once.
    history.replaceState(null, '', cfg.home + 'spa');
    if (!pending) throw new Error('this tab did not start a sign-in (or already finished it)');
    if (params.get('state') !== pending.state) throw new Error("the response's state does not match (RFC 6749 §10.12)");
    if (params.get('iss') !== cfg.issuer) throw new Error("the response's iss is not our issuer (RFC 9207)");
    if (params.get('error')) throw new Error(`authorization failed: ${params.get('error')} ${params.get('error_description') || ''}`);
    const d = await discover();
    show('Exchanging the code…');
    const tokens = await json(await fetch(d.token_endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code') || '',
        redirect_uri: cfg.redirectUri,
        client_id: cfg.clientId,
        code_verifier: pending.verifier,
      }),
    }), 'token endpoint');
    const idClaims = await verifyIdToken(tokens.id_token, pending.nonce);
    accessToken = tokens.access_token;
    $('scope').textContent = tokens.scope;
    $('id-claims').textContent = JSON.stringify(idClaims, null, 2);
    await userinfo();
    $('signed-in').hidden = false;
    $('userinfo').hidden = false;
    show(`Signed in with ${cfg.clientId} from JavaScript.`);
  }

  function fail(e) {
    show(e && e.message ? e.message : String(e), true);
    $('sign-in').hidden = false;
  }

  $('sign-in').addEventListener('click', () => signIn().catch(fail));
  $('userinfo').addEventListener('click', () => userinfo().catch(fail));
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) {
    callback(params).catch(fail);
  } else {
    show('Not signed in.');
    $('sign-in').hidden = false;
  }
})();
