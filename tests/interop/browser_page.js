// The test page's own code: enter as a client with the real pomelo client (window.pomelo, loaded
// by the <script> tags before this one) and show every pushed onMsg: its msg in #messages, its
// whole body as JSON in #notices. With a server that uses protobuf the handshake brings the protos
// (or the client finds them in localStorage from an earlier load); #protos shows the version the
// client stored. #status's data-state goes loading -> connecting -> entered, or -> failed / closed.
(function () {
  'use strict';
  var params = new URLSearchParams(window.location.search);
  var host = params.get('host');
  var port = Number(params.get('port'));
  var apikey = params.get('apikey');
  var clientId = params.get('clientId');

  function setState(state, text) {
    var el = document.getElementById('status');
    el.setAttribute('data-state', state);
    el.textContent = text || state;
  }
  function append(listId, text) {
    var li = document.createElement('li');
    li.textContent = text;
    document.getElementById(listId).appendChild(li);
  }
  function storedVersion() {
    var stored = window.localStorage.getItem('protos');
    return stored ? String(JSON.parse(stored).version) : '';
  }
  function showProtos() {
    var el = document.getElementById('protos');
    var version = storedVersion();
    el.setAttribute('data-version', version);
    el.textContent = version || 'none';
  }

  window.addEventListener('error', function (ev) {
    append('events', 'page error: ' + ev.message);
  });
  document.getElementById('client').textContent = clientId;
  document.getElementById('protos-at-load').textContent = storedVersion() || 'none';
  if (!window.pomelo || typeof window.pomelo.init !== 'function') {
    setState('failed', 'failed: window.pomelo is missing');
    return;
  }
  var pomelo = window.pomelo;
  pomelo.on('onMsg', function (body) {
    append('messages', body && body.msg);
    append('notices', JSON.stringify(body));
  });
  pomelo.on('onKick', function (body) {
    append('events', 'kicked: ' + JSON.stringify(body));
  });
  pomelo.on('io-error', function () {
    append('events', 'WebSocket error');
  });
  pomelo.on('disconnect', function (ev) {
    append('events', 'closed: ' + (ev && ev.code));
    setState('closed', 'closed (' + (ev && ev.code) + ')');
  });
  setState('connecting');
  pomelo.init({ host: host, port: port, user: {} }, function () {
    showProtos();
    pomelo.request('connector.entryHandler.enter', { role: 'client', apikey: apikey, clientId: clientId },
      function (response) {
        append('events', 'enter: ' + JSON.stringify(response));
        if (response && response.code === 200) {
          setState('entered');
        } else {
          setState('failed', 'failed: ' + JSON.stringify(response));
        }
      });
  });
})();
