// The playground page's own script (a file, so the page's CSP needs no
// 'unsafe-inline'): the sign-in bar, and the vendored GraphiQL on #graphiql
// with the explorer plugin and a graphql-ws client for subscriptions.
//
// Where the secrets go: the password only into the signIn request sent from
// here (never into GraphiQL's editors, history or localStorage); the token
// into this tab's sessionStorage (gone when the tab closes, not shared with
// other tabs, cleared on sign-out) and from there into the Authorization
// header of every request and the graphql-ws connection_init payload.
(function () {
  'use strict';

  const SESSION_KEY = 'license-gateway:session';
  const KINDS = {
    OPERATOR: 'operator',
    SITE_ADMINISTRATOR: 'site administrator',
    SITE_USER: 'site user',
    AGREEMENT_OWNER: 'agreement owner'
  };

  // ---- GraphiQL's storage (localStorage): never a header ----------------

  // GraphiQL 3.9 writes the headers of every query it runs into its history
  // (graphiql:queries, graphiql:favorites) whatever shouldPersistHeaders
  // says, so a token typed into the Headers tab would land in localStorage.
  // This storage drops every `headers` value before anything is written.
  const SCRUBBED = ['graphiql:queries', 'graphiql:favorites', 'graphiql:tabState'];
  function dropHeaders(value) {
    if (Array.isArray(value)) {
      value.forEach(dropHeaders);
    } else if (value && typeof value === 'object') {
      Object.keys(value).forEach((key) => {
        if (key === 'headers') value[key] = null;
        else dropHeaders(value[key]);
      });
    }
    return value;
  }
  const graphiqlKeys = () => Object.keys(localStorage).filter((k) => k.indexOf('graphiql:') === 0);
  const storage = {
    getItem: (key) => localStorage.getItem(key),
    setItem: (key, value) => {
      if (key === 'graphiql:headers') {
        localStorage.removeItem(key);
        return;
      }
      if (SCRUBBED.indexOf(key) >= 0) {
        try {
          value = JSON.stringify(dropHeaders(JSON.parse(value)));
        } catch (e) {
          localStorage.removeItem(key); // not what GraphiQL writes there: keep nothing unchecked
          return;
        }
      }
      localStorage.setItem(key, value);
    },
    removeItem: (key) => localStorage.removeItem(key),
    get length() {
      return graphiqlKeys().length;
    },
    clear: () => graphiqlKeys().forEach((k) => localStorage.removeItem(k))
  };
  // What an earlier version of this page stored (it kept the headers) goes.
  storage.setItem('graphiql:headers', null);
  SCRUBBED.forEach((key) => {
    const stored = localStorage.getItem(key);
    if (stored !== null) storage.setItem(key, stored);
  });

  // ---- The session: this tab only ---------------------------------------

  /** The stored session `{ token, expiresAt, username, kind }`, if one is still current. */
  function storedSession() {
    try {
      const session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      return session && session.token && Date.parse(session.expiresAt) > Date.now() ? session : null;
    } catch (e) {
      return null;
    }
  }

  /** POSTs one operation; resolves to the JSON answer, rejects when there is none. */
  async function post(query, variables, token) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    return response.json();
  }

  // ---- The query a new tab starts with -----------------------------------

  const WELCOME = [
    '# license-gateway playground',
    '#',
    '# Sign in with the form above: a tab with',
    '# the license pools then opens, ready to run.',
    '# The password goes only to signIn, never',
    '# into this editor or its history.',
    '#',
    '# Docs (book icon): every type and field.',
    '# Explorer (folder icon): build a query',
    '# by clicking.',
    ''
  ].join('\n');

  /** The first tab after sign-in: the pools the principal of `kind` sees, and a subscription to them. */
  function poolsQuery(kind) {
    const bySite = kind === 'OPERATOR' || kind === 'AGREEMENT_OWNER';
    const head = {
      OPERATOR: ['# The license pools of every site (the first 20).', 'query Pools {', '  sites(first: 20) {', '    nodes {'],
      AGREEMENT_OWNER: ['# The license pools of the sites you own.', 'query Pools {', '  viewer {', '    ownedSites {']
    }[kind] || ['# The license pools of your site.', 'query Pools {', '  viewer {', '    site {'];
    return head.concat([
      '      id',
      '      name',
      '      licensePools {',
      '        module { code name }',
      '        total',
      '        used',
      '        available',
      '        nearLimit',
      '      }',
      '    }',
      '  }',
      '}',
      '',
      '# Press ▶ (or Ctrl-Enter) to run it.',
      '#',
      '# To watch the pools change as changes commit',
      '# (the numbers now, then every change), open a',
      '# new tab (+) and run this subscription' + (bySite ? ' with a' : ':'),
      bySite ? '# site id from above:' : null,
      '#',
      '#   subscription LivePools {',
      '#     licensePools' + (bySite ? '(siteId: "<id>")' : '') + ' {',
      '#       module { code }',
      '#       total',
      '#       used',
      '#       available',
      '#       nearLimit',
      '#     }',
      '#   }',
      ''
    ]).filter((line) => line !== null).join('\n');
  }

  // ---- GraphiQL -----------------------------------------------------------

  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  let session = null;
  let wsClient = null;
  let fetcher = null;
  // Set at sign-in: once GraphiQL has rendered for the new session, the pools tab opens.
  let openPoolsTab = false;

  /** Renders nothing; inside GraphiQL, so it can open the pools tab at sign-in. */
  function PoolsTabOpener() {
    const editor = GraphiQL.React.useEditorContext({ nonNull: true });
    React.useEffect(() => {
      if (!openPoolsTab || !session) return;
      openPoolsTab = false;
      const query = poolsQuery(session.kind);
      const open = editor.tabs.findIndex((tab) => tab.query === query);
      if (open >= 0) editor.changeTab(open);
      else editor.addTab(); // with the defaultQuery this session rendered: the pools
    });
    return null;
  }

  /** A fetcher (and a lazy graphql-ws client) that send the session's token. */
  function connect() {
    if (wsClient) wsClient.dispose(); // a signed-out session's subscriptions end here
    const auth = session ? { Authorization: 'Bearer ' + session.token } : {};
    wsClient = graphqlWs.createClient({ url: wsUrl, connectionParams: auth, lazy: true });
    fetcher = GraphiQL.createFetcher({ url: '/graphql', headers: auth, wsClient });
  }

  function render() {
    root.render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultQuery: session ? poolsQuery(session.kind) : WELCOME,
        plugins: [explorer],
        isHeadersEditorEnabled: true,
        // Headers typed by hand are never written to localStorage.
        shouldPersistHeaders: false,
        storage,
        toolbar: { additionalComponent: PoolsTabOpener }
      })
    );
  }

  // ---- The sign-in bar ----------------------------------------------------

  const form = document.getElementById('sign-in');
  const signedIn = document.getElementById('signed-in');
  const message = document.getElementById('session-message');
  const say = (text, refused) => {
    message.textContent = text || '';
    message.classList.toggle('refused', !!refused);
  };

  function show() {
    form.hidden = !!session;
    signedIn.hidden = !session;
    document.getElementById('signed-in-name').textContent = session ? session.username : '';
    document.getElementById('signed-in-kind').textContent = session ? '(' + (KINDS[session.kind] || session.kind) + ')' : '';
  }

  let expiry = null;

  function begin(newSession, withPoolsTab) {
    session = newSession;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    openPoolsTab = withPoolsTab;
    const left = Math.min(Date.parse(session.expiresAt) - Date.now(), 2 ** 31 - 1);
    expiry = setTimeout(() => end('Your session has expired. Sign in again.'), left);
    connect();
    render();
    show();
  }

  function end(text) {
    clearTimeout(expiry);
    session = null;
    sessionStorage.removeItem(SESSION_KEY);
    connect();
    render();
    show();
    say(text);
    form.elements.username.focus();
  }

  const SIGN_IN = `mutation SignIn($username: String!, $password: String!) {
    signIn(username: $username, password: $password) {
      __typename
      ... on SignInSuccess { token expiresAt viewer { kind username } }
      ... on Refusal { code message }
    }
  }`;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const username = form.elements.username.value;
    const password = form.elements.password;
    const button = form.querySelector('button');
    button.disabled = true;
    say('Signing in…');
    try {
      const answer = await post(SIGN_IN, { username, password: password.value });
      const result = answer.data && answer.data.signIn;
      if (result && result.__typename === 'SignInSuccess') {
        say('');
        const { token, expiresAt, viewer } = result;
        begin({ token, expiresAt, username: viewer.username, kind: viewer.kind }, true);
      } else {
        // A refusal (wrong username or password, an expired login, too many attempts) says why.
        say(result ? result.message : answer.errors[0].message, true);
      }
    } catch (e) {
      say('The server did not answer: ' + e.message, true);
    } finally {
      password.value = ''; // whatever the answer: typed again for another attempt
      button.disabled = false;
    }
  });

  document.getElementById('sign-out').addEventListener('click', async () => {
    const { token, expiresAt } = session;
    let text = 'Signed out.';
    try {
      await post('mutation SignOut { signOut }', {}, token);
    } catch (e) {
      text = 'Signed out of this tab, but the server did not answer: the session stays valid until ' + expiresAt + '.';
    }
    end(text);
  });

  // A reload of this tab keeps its session, unless the server has ended it.
  const kept = storedSession();
  if (kept) {
    begin(kept, false);
    post('query Session { viewer { username } }', {}, kept.token).then(
      (answer) => {
        const code = answer.errors && answer.errors[0].extensions && answer.errors[0].extensions.code;
        if (code === 'UNAUTHENTICATED' && session === kept) end('Your session has ended. Sign in again.');
      },
      () => {} // no answer now: the next request will tell
    );
  } else {
    end('');
  }
})();
